//! `connector = 'file', format = 'avro'`: an Avro object container file
//! (its writer schema in its header, blocks optionally deflate- or
//! snappy-compressed), read by arrow-avro in batches of the columns the
//! query reads. `'avro.schema'` (or `'avro.schema.file'`), when given, is
//! the reader schema the file's is resolved against (schema evolution).
//!
//! The position checkpoints keep is the number of rows handed on; a resumed
//! source reads the file again from its start and skips them (container
//! files are written once, so their rows are the same on every read).

use std::fs::File;
use std::io::BufReader;

use arrow::record_batch::RecordBatch;
use arrow_avro::reader::{Reader, ReaderBuilder};
use arrow_avro::schema::AvroSchema;

use super::{RecordSchema, SchemaSource, check_columns, to_declared};
use crate::catalog::StreamDef;
use crate::connectors::projection::Projection;
use crate::connectors::{Source, SourceContext, SourceCounters, SourceEvent};
use crate::error::ConnectorError;

/// Reads one container file.
pub struct AvroFileSource {
    stream: String,
    path: String,
    reader: Reader<BufReader<File>>,
    projection: Projection,
    /// Reader columns beyond the decoded ones (one when none is decoded, to
    /// count rows).
    counting_field: bool,
    /// Rows handed on.
    rows: u64,
    /// Rows still to skip after a resume.
    skip: u64,
    counters: std::sync::Arc<SourceCounters>,
}

fn io(stream: &str, path: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Config {
        stream: stream.to_string(),
        message: format!("'{path}' is not a readable Avro container file: {e}"),
    }
}

impl AvroFileSource {
    /// Opens `def`'s file.
    ///
    /// # Errors
    /// A file that cannot be opened or is no container file, or a schema
    /// the declared columns do not match (naming the column).
    pub fn open(def: &StreamDef, ctx: &SourceContext) -> Result<Self, ConnectorError> {
        let o = &def.options;
        let path = o.require("path")?.to_string();
        if o.bool_or("follow", false)? {
            return Err(o.error(
                "'follow' reads lines appended to a file; an Avro container file is read once",
            ));
        }
        let open = || {
            File::open(&path)
                .map(BufReader::new)
                .map_err(|e| ConnectorError::Io {
                    context: format!(
                        "stream '{}': cannot open '{path}' (check the 'path' option)",
                        def.name
                    ),
                    source: e,
                })
        };
        // the writer schema, from the header
        let header = ReaderBuilder::new()
            .build(open()?)
            .map_err(|e| io(&def.name, &path, e))?;
        let written = header
            .avro_header()
            .get(arrow_avro::schema::SCHEMA_METADATA_KEY.as_bytes())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .ok_or_else(|| io(&def.name, &path, "its header has no schema"))?;
        let given = match SchemaSource::from_options(o, None)? {
            SchemaSource::Given(text) => Some(text),
            SchemaSource::Registry { .. } => {
                return Err(o.error(
                    "a container file carries its schema: 'avro.schema-registry.url' is for Kafka",
                ));
            }
            SchemaSource::None => None,
        };
        let record =
            RecordSchema::parse(given.as_deref().unwrap_or(&written)).map_err(|e| o.error(e))?;
        check_columns(&def.schema, &record).map_err(|e| o.error(e))?;
        let projection = Projection::new(&def.schema, ctx.projection.as_deref());
        let mut names: Vec<String> = projection
            .decoded_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let counting_field = names.is_empty();
        if counting_field {
            names.push(def.schema.field(0).name().clone());
        }
        let reader = ReaderBuilder::new()
            .with_batch_size(ctx.batch_size.max(1))
            .with_reader_schema(AvroSchema::new(record.reader_for(&names).to_string()))
            .build(open()?)
            .map_err(|e| io(&def.name, &path, e))?;
        Ok(Self {
            stream: def.name.clone(),
            path,
            reader,
            projection,
            counting_field,
            rows: 0,
            skip: 0,
            counters: ctx.counters.clone(),
        })
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, ConnectorError> {
        let Some(b) = self.reader.next() else {
            return Ok(None);
        };
        let b = b.map_err(|e| io(&self.stream, &self.path, e))?;
        let n = b.num_rows();
        let keep = b.num_columns() - usize::from(self.counting_field);
        let decoded = self.projection.decoded_schema().clone();
        let mut bad = vec![false; n];
        let columns = to_declared(&b.columns()[..keep], &decoded, &mut bad)
            .map_err(|e| io(&self.stream, &self.path, e))?;
        if let Some(r) = bad.iter().position(|b| *b) {
            return Err(ConnectorError::Malformed {
                source_name: self.path.clone(),
                line: self.rows + r as u64 + 1,
                reason: "a DECIMAL value has more integer digits than its column holds (record number given as the line)".into(),
            });
        }
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n));
        let batch = RecordBatch::try_new_with_options(decoded, columns, &options)
            .map_err(|e| io(&self.stream, &self.path, e))?;
        Ok(Some(self.projection.expand(batch)?))
    }
}

impl Source for AvroFileSource {
    fn resume_state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "rows": self.rows }))
    }

    fn resume(&mut self, state: &serde_json::Value) -> Result<(), ConnectorError> {
        let rows = state
            .get("rows")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| io(&self.stream, &self.path, format!("not a position: {state}")))?;
        self.skip = rows;
        self.rows = rows;
        Ok(())
    }

    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        loop {
            let Some(mut b) = self.next_batch()? else {
                return Ok(SourceEvent::End);
            };
            if self.skip > 0 {
                let drop = self.skip.min(b.num_rows() as u64) as usize;
                self.skip -= drop as u64;
                b = b.slice(drop, b.num_rows() - drop);
                if b.num_rows() == 0 {
                    continue;
                }
            }
            self.rows += b.num_rows() as u64;
            SourceCounters::add(&self.counters.records, b.num_rows() as u64);
            return Ok(SourceEvent::Batch(b));
        }
    }
}
