//! Rows → Avro message values, one per row (arrow-avro's encoder).
//!
//! The writer schema is `'avro.schema'` (its fields must be the columns'
//! names, of types the columns read back as) or, by default, the schema of
//! the columns ([`super::schema_of_columns`]). With a registry it is
//! registered under the subject and every value carries the Confluent wire
//! format's prefix (a 0 byte, the schema id); without one, values are bare
//! Avro bodies.

use std::collections::HashMap;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow_avro::schema::{FingerprintStrategy, SCHEMA_METADATA_KEY};
use arrow_avro::writer::format::{AvroBinaryFormat, AvroSoeFormat};
use arrow_avro::writer::{Encoder, WriterBuilder};

use super::registry::Registry;
use super::{RecordSchema, SchemaSource, check_columns, schema_of_columns};
use crate::error::ConnectorError;

/// Encodes the rows of one sink.
pub struct AvroEncoder {
    encoder: Encoder,
    stream: String,
}

impl std::fmt::Debug for AvroEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroEncoder")
            .field("stream", &self.stream)
            .finish()
    }
}

impl AvroEncoder {
    /// An encoder of batches of `schema` for stream `stream`.
    ///
    /// # Errors
    /// A given schema the columns do not match, a registry that refuses the
    /// schema or cannot be reached.
    pub fn new(
        stream: &str,
        schema: &SchemaRef,
        source: &SchemaSource,
    ) -> Result<Self, ConnectorError> {
        let config = |message: String| ConnectorError::Config {
            stream: stream.to_string(),
            message,
        };
        let text = match source {
            SchemaSource::Given(text) => {
                let record = RecordSchema::parse(text).map_err(config)?;
                check_columns(schema, &record).map_err(config)?;
                text.clone()
            }
            _ => schema_of_columns(stream, schema).to_string(),
        };
        let mut md: HashMap<String, String> = schema.metadata().clone().into();
        md.insert(SCHEMA_METADATA_KEY.to_string(), text.clone());
        let with_schema = Schema::new_with_metadata(schema.fields().clone(), md);
        let encoder = match source {
            SchemaSource::Registry { url, subject } => {
                let id = Registry::shared(url)
                    .register(subject, &text)
                    .map_err(|e| config(e.to_string()))?;
                WriterBuilder::new(with_schema)
                    .with_fingerprint_strategy(FingerprintStrategy::Id(id))
                    .build_encoder::<AvroSoeFormat>()
            }
            _ => WriterBuilder::new(with_schema).build_encoder::<AvroBinaryFormat>(),
        }
        .map_err(|e| config(format!("the Avro schema: {e}")))?;
        Ok(Self {
            encoder,
            stream: stream.to_string(),
        })
    }

    /// The value of each row of `batch`.
    ///
    /// # Errors
    /// A value the schema cannot hold (a bug: the columns were checked).
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<bytes::Bytes>, ConnectorError> {
        self.encoder
            .encode(batch)
            .map_err(|e| ConnectorError::Config {
                stream: self.stream.clone(),
                message: format!("encoding Avro: {e}"),
            })?;
        let rows = self.encoder.flush();
        Ok(rows.iter().collect())
    }
}
