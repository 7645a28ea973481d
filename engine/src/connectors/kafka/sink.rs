//! The Kafka sink: each row as a JSON value, the key from a chosen column
//! (under `upsert-kafka`, the latest row per key: `upsert.rs`),
//! through librdkafka's batching producer with idempotence on. A failed
//! delivery is remembered by the delivery callback and fails the next write,
//! flush or close: the query stops with it rather than dropping rows. With
//! `'sink.delivery' = 'exactly-once'` the producer is transactional: one
//! transaction per checkpoint epoch (see `transactions.rs`).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use rdkafka::producer::BaseRecord;

use crate::catalog::StreamDef;
use crate::connectors::Sink;
use crate::connectors::encode::{Encoder, Format};
use crate::connectors::kafka::SinkOptions;
use crate::connectors::kafka::delivery::{Delivery, delivery_sink_methods};
use crate::connectors::kafka::upsert::Upsert;

/// The index of column `name` among the rows a sink of `def` writes, or an
/// error saying `what` names none of them.
pub(super) fn written_column(
    def: &StreamDef,
    schema: &SchemaRef,
    name: &str,
    what: &str,
) -> Result<usize, ConnectorError> {
    let names = || {
        schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|n| *n != crate::plan::logical::OP_COLUMN)
            .collect::<Vec<_>>()
            .join(", ")
    };
    schema
        .fields()
        .iter()
        .position(|f| f.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            def.options.error(format!(
                "{what} is not a column of the rows written; columns: {}",
                names()
            ))
        })
}
use crate::error::ConnectorError;

/// Writes a query's rows to a topic.
pub struct KafkaSink {
    stream: String,
    topic: String,
    delivery: Delivery,
    encoder: Encoder,
    /// `format = 'avro'`: encodes instead of `encoder`.
    avro: Option<crate::connectors::avro::encode::AvroEncoder>,
    /// `format = 'protobuf'`: encodes instead of `encoder`.
    protobuf: Option<crate::connectors::protobuf::encode::ProtoEncoder>,
    key_column: Option<usize>,
    buf: Vec<u8>,
    options: SinkOptions,
    /// Under `upsert-kafka`: records by key, tombstones for rows taken back.
    upsert: Option<Upsert>,
}

impl KafkaSink {
    /// Creates the producer for `def`, writing batches of `schema`.
    ///
    /// # Errors
    /// Bad options (a key column the query does not produce) or a producer
    /// librdkafka will not create.
    pub fn open(def: &StreamDef, schema: SchemaRef) -> Result<Self, ConnectorError> {
        let o = SinkOptions::from_def(def)?;
        let upsert = if def.connector().eq_ignore_ascii_case("upsert-kafka") {
            Some(Upsert::open(def, &schema)?)
        } else {
            None
        };
        let key_column = match &o.key_column {
            None => None,
            Some(k) => Some(written_column(
                def,
                &schema,
                k,
                &format!("'key.column' = '{k}'"),
            )?),
        };
        let delivery = Delivery::new(
            &def.name,
            &o.topic,
            o.config.clone(),
            o.base.clone(),
            o.flush_timeout,
        )?;
        let avro = match &o.format {
            super::ValueFormat::Avro(source) => Some(
                crate::connectors::avro::encode::AvroEncoder::new(&def.name, &schema, source)?,
            ),
            _ => None,
        };
        let protobuf = match &o.format {
            super::ValueFormat::Protobuf(p) => Some(
                crate::connectors::protobuf::encode::ProtoEncoder::new(&def.name, &schema, p)?,
            ),
            _ => None,
        };
        Ok(Self {
            avro,
            protobuf,
            stream: def.name.clone(),
            topic: o.topic.clone(),
            delivery,
            encoder: Encoder::new(Format::Json, &schema),
            key_column,
            buf: Vec::new(),
            options: o,
            upsert,
        })
    }

    /// The key column as text (`None` without a key column).
    fn keys(&self, batch: &RecordBatch) -> Result<Option<ArrayRef>, ConnectorError> {
        let Some(c) = self.key_column else {
            return Ok(None);
        };
        arrow::compute::cast(batch.column(c), &DataType::Utf8)
            .map(Some)
            .map_err(|e| ConnectorError::Arrow {
                context: format!("stream '{}': the key column as text", self.stream),
                source: e,
            })
    }
}

impl Sink for KafkaSink {
    delivery_sink_methods!();

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        self.delivery.failure()?;
        if let Some(upsert) = &mut self.upsert {
            let (delivery, topic) = (&self.delivery, &self.topic);
            return upsert.records(batch, |key, value| {
                let record = BaseRecord::<[u8], [u8]>::to(topic).key(key);
                delivery.send(match value {
                    Some(v) => record.payload(v),
                    None => record,
                })
            });
        }
        let binary = match (&mut self.avro, &self.protobuf) {
            (Some(avro), _) => Some(
                avro.encode(batch)?
                    .into_iter()
                    .map(|b| b.to_vec())
                    .collect::<Vec<_>>(),
            ),
            (_, Some(proto)) => Some(proto.encode(batch)?),
            _ => None,
        };
        if let Some(values) = binary {
            let keys = self.keys(batch)?;
            let keys = keys.as_ref().map(|k| k.as_string::<i32>());
            for (row, value) in values.iter().enumerate() {
                let mut record = BaseRecord::<str, [u8]>::to(&self.topic).payload(value.as_ref());
                if let Some(k) = keys.filter(|k| k.is_valid(row)) {
                    record = record.key(k.value(row));
                }
                self.delivery.send(record)?;
            }
            return Ok(());
        }
        self.buf.clear();
        self.encoder.encode(batch, &mut self.buf);
        let keys = self.keys(batch)?;
        let keys = keys.as_ref().map(|k| k.as_string::<i32>());
        for (row, line) in self
            .buf
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            let mut record = BaseRecord::<str, [u8]>::to(&self.topic).payload(line);
            if let Some(k) = keys.filter(|k| k.is_valid(row)) {
                record = record.key(k.value(row));
            }
            self.delivery.send(record)?;
        }
        Ok(())
    }

    fn commits_with_checkpoints(&self) -> bool {
        self.options.exactly_once
    }

    /// Under exactly-once: a transactional producer (`transactional.id`
    /// `<prefix>-<run>`, the prefix `eddy-<query>-<stream>` unless set),
    /// initialised after fencing the `earlier` runs; the checkpoint its
    /// last commit belongs to.
    fn prepare_checkpoints(
        &mut self,
        query: &str,
        (run, earlier): (&str, &[String]),
    ) -> Result<Option<crate::checkpoint::CheckpointRef>, ConnectorError> {
        if !self.options.exactly_once {
            return Ok(None);
        }
        let prefix = self
            .options
            .transactional_id
            .clone()
            .unwrap_or_else(|| format!("eddy-{query}-{}", self.stream));
        self.delivery.transactional(&prefix, run, earlier).map(Some)
    }
}
