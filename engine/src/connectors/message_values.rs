//! Message values decoded on their own, as a Kafka source decodes each
//! polled batch (JSON or Avro, with the stream's `format` options): the
//! decoders' hot path without a broker, for benches and tools.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::catalog::Options;
use crate::connectors::kafka::decode::KafkaDecoder;
use crate::connectors::kafka::{RawBatch, ValueFormat, with_system_columns};
use crate::error::ConnectorError;

/// Decodes batches of message values into rows of declared columns.
pub struct MessageValues {
    decoder: KafkaDecoder,
    topics: Arc<[String]>,
}

impl MessageValues {
    /// A decoder of values into `declared` columns, in the format `options`
    /// give (`format`, `json.lenient`, `avro.*`), as stream `stream`'s.
    ///
    /// # Errors
    /// Bad format options, or a schema the columns do not match.
    pub fn new(
        stream: &str,
        declared: SchemaRef,
        options: &[(&str, &str)],
    ) -> Result<Self, ConnectorError> {
        let o = Options::new(
            stream,
            options.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let format = ValueFormat::from_options(&o)?;
        let schema = with_system_columns(&declared);
        Ok(Self {
            decoder: KafkaDecoder::new(stream, schema, None, &format)?,
            topics: Arc::from(vec![stream.to_string()]),
        })
    }

    /// The rows of `values` (declared columns, then Kafka's system columns)
    /// and how many values were malformed.
    ///
    /// # Errors
    /// An Arrow failure; malformed values are counted, not errors.
    pub fn decode(&mut self, values: &[&[u8]]) -> Result<(RecordBatch, usize), ConnectorError> {
        let mut raw = RawBatch::new(self.topics.clone());
        let topic = self.topics[0].clone();
        for (i, v) in values.iter().enumerate() {
            raw.push(&topic, 0, i as i64, None, None, Some(v));
        }
        let d = self.decoder.decode(&raw)?;
        Ok((d.batch, d.malformed.len()))
    }
}
