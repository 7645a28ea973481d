//! The `upsert-kafka` connector (as Flink's): a Kafka sink that writes a
//! changelog as the latest value per key, for compacted topics and
//! key-value consumers. The key is the stream's `PRIMARY KEY (...) NOT
//! ENFORCED` (or `'key.fields' = 'a;b'`), as a JSON object of the key
//! columns (`'key.format' = 'json'`, the default) or one column's text
//! (`'raw'`); the value is the row as JSON, without `_op`.
//!
//! A row added (`+I`, `+U`) is a record with the key and the value; a row
//! taken back (`-U`, `-D`) deletes its key with a tombstone (a record with
//! no value), unless a later row of the same batch adds the key again: an
//! update (`-U` then `+U` of one key) is one record. A changelog's `-U`
//! and its `+U` come in one batch, so a key whose row is only taken back
//! (a group that emptied, a row that left a top-N) is deleted. An
//! append-only query writes one record per row.

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use rustc_hash::FxHashMap;

use crate::catalog::StreamDef;
use crate::connectors::encode::{Encoder, Format};
use crate::connectors::kafka::sink::written_column;
use crate::connectors::kafka::{KafkaSink, SinkOptions, check_keys};
use crate::error::ConnectorError;
use crate::plan::logical::OP_COLUMN;

/// The options an `upsert-kafka` stream takes (besides `properties.*`).
pub(super) const KEYS: &[&str] = &[
    "topic",
    "key.fields",
    "key.format",
    "value.format",
    "sink.flush_timeout",
    "sink.delivery",
    "sink.transactional-id",
];

/// The `upsert-kafka` connector (write only).
pub struct UpsertKafka;

impl crate::connectors::registry::Connector for UpsertKafka {
    fn name(&self) -> &'static str {
        "upsert-kafka"
    }

    fn validate(&self, def: &StreamDef) -> Result<(), ConnectorError> {
        SinkOptions::from_def(def)?;
        let key = UpsertOptions::from_def(def)?;
        // a sink that declares its columns must have its key among them
        if !def.schema.fields().is_empty() {
            key.columns(def, &def.schema)?;
        }
        Ok(())
    }

    fn can_write(&self) -> bool {
        true
    }

    fn changelog_writes(&self) -> Option<&'static str> {
        Some("upserts by key, deletes as tombstones")
    }

    fn delivery(&self, def: &StreamDef) -> &'static str {
        super::Kafka.delivery(def)
    }

    fn exactly_once(&self, def: &StreamDef) -> bool {
        super::Kafka.exactly_once(def)
    }

    fn open_sink(
        &self,
        def: &StreamDef,
        schema: SchemaRef,
        _ctx: &crate::connectors::SinkContext,
    ) -> Result<Box<dyn crate::connectors::Sink>, ConnectorError> {
        Ok(Box::new(KafkaSink::open(def, schema)?))
    }
}

/// The key of an `upsert-kafka` stream, checked.
pub(super) struct UpsertOptions {
    key: Vec<String>,
    json: bool,
}

impl UpsertOptions {
    /// Reads the key and formats of an `upsert-kafka` stream.
    ///
    /// # Errors
    /// No key, a key given twice, or a format it cannot write.
    pub(super) fn from_def(def: &StreamDef) -> Result<Self, ConnectorError> {
        let o = &def.options;
        check_keys(o, KEYS)?;
        let fields: Vec<String> = o
            .get("key.fields")
            .map(|f| {
                f.split(';')
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let key = match (def.primary_key.is_empty(), fields.is_empty()) {
            (false, false) => {
                return Err(o.error(
                    "the key is given twice, by PRIMARY KEY and by 'key.fields'; keep one",
                ));
            }
            (false, true) => def.primary_key.clone(),
            (true, false) => fields,
            (true, true) => {
                return Err(o.error(
                    "an 'upsert-kafka' sink writes the latest row per key and needs the key: declare PRIMARY KEY (auction) NOT ENFORCED after its columns, or set 'key.fields' = 'auction' (several: 'a;b')",
                ));
            }
        };
        let json = o.choice_or("key.format", &["json", "raw"], "json")? == "json";
        if !json && key.len() != 1 {
            return Err(o.error(format!(
                "'key.format' = 'raw' writes one column's text, but the key has {} columns; use 'key.format' = 'json'",
                key.len()
            )));
        }
        o.choice_or("value.format", &["json"], "json")?;
        Ok(Self { key, json })
    }

    /// The key columns' indexes in `schema`.
    fn columns(&self, def: &StreamDef, schema: &SchemaRef) -> Result<Vec<usize>, ConnectorError> {
        self.key
            .iter()
            .map(|k| written_column(def, schema, k, &format!("key column '{k}'")))
            .collect()
    }
}

/// Turns batches into upsert records.
pub(super) struct Upsert {
    stream: String,
    key: Vec<usize>,
    op: Option<usize>,
    /// Every column but `_op`.
    value: Vec<usize>,
    /// The JSON encoder of the key columns (`None`: a raw key).
    key_encoder: Option<Encoder>,
    value_encoder: Encoder,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Upsert {
    /// The writer of `def`'s records from batches of `schema`.
    ///
    /// # Errors
    /// A key column the rows do not have.
    pub(super) fn open(def: &StreamDef, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        let o = UpsertOptions::from_def(def)?;
        let key = o.columns(def, schema)?;
        let op = schema.index_of(OP_COLUMN).ok();
        let value: Vec<usize> = (0..schema.fields().len())
            .filter(|&c| Some(c) != op)
            .collect();
        let project = |cols: &[usize]| -> Result<SchemaRef, ConnectorError> {
            schema
                .project(cols)
                .map(std::sync::Arc::new)
                .map_err(|e| ConnectorError::Arrow {
                    context: format!("stream '{}': the key columns", def.name),
                    source: e,
                })
        };
        Ok(Self {
            stream: def.name.clone(),
            key_encoder: if o.json {
                Some(Encoder::new(Format::Json, &project(&key)?))
            } else {
                None
            },
            value_encoder: Encoder::new(Format::Json, &project(&value)?),
            key,
            op,
            value,
            key_buf: Vec::new(),
            value_buf: Vec::new(),
        })
    }

    /// Calls `send(key, value)` for each record of `batch`, in order:
    /// `value` is `None` for a tombstone.
    ///
    /// # Errors
    /// A raw key that is NULL, or what `send` returns.
    pub(super) fn records(
        &mut self,
        batch: &RecordBatch,
        mut send: impl FnMut(&[u8], Option<&[u8]>) -> Result<(), ConnectorError>,
    ) -> Result<(), ConnectorError> {
        let arrow_err = |e| ConnectorError::Arrow {
            context: format!("stream '{}': upsert records", self.stream),
            source: e,
        };
        self.value_buf.clear();
        self.value_encoder.encode(
            &batch.project(&self.value).map_err(arrow_err)?,
            &mut self.value_buf,
        );
        self.key_buf.clear();
        let raw: Option<StringArray> = match &self.key_encoder {
            Some(e) => {
                e.encode(
                    &batch.project(&self.key).map_err(arrow_err)?,
                    &mut self.key_buf,
                );
                None
            }
            None => Some(
                arrow::compute::cast(batch.column(self.key[0]), &DataType::Utf8)
                    .map_err(arrow_err)?
                    .as_string::<i32>()
                    .clone(),
            ),
        };
        let lines = |buf: &[u8]| -> Vec<(usize, usize)> {
            let mut out = Vec::with_capacity(batch.num_rows());
            let mut start = 0;
            for (i, &b) in buf.iter().enumerate() {
                if b == b'\n' {
                    out.push((start, i));
                    start = i + 1;
                }
            }
            out
        };
        let values = lines(&self.value_buf);
        let keys = lines(&self.key_buf);
        let ops = self.op.map(|c| batch.column(c).as_string::<i32>());
        // keys taken back and not added again since, with when
        let mut deleted: FxHashMap<&[u8], usize> = FxHashMap::default();
        for row in 0..batch.num_rows() {
            let key: &[u8] = match &raw {
                None => &self.key_buf[keys[row].0..keys[row].1],
                Some(k) if k.is_valid(row) => k.value(row).as_bytes(),
                Some(_) => {
                    return Err(ConnectorError::Config {
                        stream: self.stream.clone(),
                        message: format!(
                            "a row's key column '{}' is NULL, which a raw key cannot write; use 'key.format' = 'json' (it writes null), or filter the NULL keys out",
                            batch.schema().field(self.key[0]).name()
                        ),
                    });
                }
            };
            let taken_back = ops.is_some_and(|o| o.is_valid(row) && o.value(row).starts_with('-'));
            if taken_back {
                deleted.insert(key, row);
            } else {
                deleted.remove(key);
                send(key, Some(&self.value_buf[values[row].0..values[row].1]))?;
            }
        }
        let mut tombstones: Vec<(&[u8], usize)> = deleted.into_iter().collect();
        tombstones.sort_unstable_by_key(|(_, row)| *row);
        for (key, _) in tombstones {
            send(key, None)?;
        }
        Ok(())
    }
}
