//! `connector = 'file', format = 'avro'`: an Avro object container file
//! (its writer schema in its header, blocks optionally deflate- or
//! snappy-compressed), read by arrow-avro in batches of the columns the
//! query reads. `'avro.schema'` (or `'avro.schema.file'`), when given, is
//! the reader schema the file's is resolved against (schema evolution).
//!
//! The position checkpoints keep is the number of records read (handed on,
//! or malformed); a resumed source reads the file again from its start and
//! skips them (container files are written once, so their records are the
//! same on every read).

use std::fs::File;
use std::io::BufReader;

use arrow::record_batch::RecordBatch;
use arrow_avro::reader::{Reader, ReaderBuilder};
use arrow_avro::schema::AvroSchema;

use super::{RecordSchema, SchemaSource, check_columns, to_declared};
use crate::catalog::StreamDef;
use crate::connectors::json::OnError;
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
    /// Records read and handed on or set aside as malformed.
    rows: u64,
    /// Rows still to skip after a resume.
    skip: u64,
    counters: std::sync::Arc<SourceCounters>,
    on_error: OnError,
    /// Malformed records' dead letters not yet taken.
    dead_letters: Vec<String>,
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
            on_error: OnError::from_options(o)?,
            dead_letters: Vec::new(),
        })
    }

    /// The next batch of records, and which of them are malformed.
    fn next_batch(&mut self) -> Result<Option<(RecordBatch, Vec<bool>)>, ConnectorError> {
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
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n));
        let batch = RecordBatch::try_new_with_options(decoded, columns, &options)
            .map_err(|e| io(&self.stream, &self.path, e))?;
        Ok(Some((self.projection.expand(batch)?, bad)))
    }

    /// `batch` without its malformed records (`bad`), which follow
    /// `'format.on_error'`; its first record is record `self.rows + 1`.
    fn without_malformed(
        &mut self,
        batch: RecordBatch,
        bad: &[bool],
    ) -> Result<RecordBatch, ConnectorError> {
        let Some(first) = bad.iter().position(|b| *b) else {
            return Ok(batch);
        };
        let reason = "a DECIMAL value has more integer digits than its column holds";
        if self.on_error == OnError::Fail {
            return Err(ConnectorError::Malformed {
                source_name: self.path.clone(),
                line: self.rows + first as u64 + 1,
                reason: format!("{reason} (record number given as the line)"),
            });
        }
        let malformed = bad.iter().filter(|b| **b).count();
        SourceCounters::add(&self.counters.malformed, malformed as u64);
        if self.on_error == OnError::DeadLetter {
            for (i, _) in bad.iter().enumerate().filter(|(_, b)| **b) {
                let letter = serde_json::json!({
                    "reason": format!("malformed record: {reason}"),
                    "stream": self.stream,
                    "path": self.path,
                    "record": self.rows + i as u64 + 1,
                });
                self.dead_letters.push(letter.to_string());
            }
        }
        let keep: arrow::array::BooleanArray = bad.iter().map(|b| Some(!b)).collect();
        arrow::compute::filter_record_batch(&batch, &keep)
            .map_err(|e| io(&self.stream, &self.path, e))
    }
}

impl Source for AvroFileSource {
    fn take_dead_letters(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dead_letters)
    }

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
            let Some((mut b, mut bad)) = self.next_batch()? else {
                return Ok(SourceEvent::End);
            };
            if self.skip > 0 {
                let drop = self.skip.min(b.num_rows() as u64) as usize;
                self.skip -= drop as u64;
                b = b.slice(drop, b.num_rows() - drop);
                bad.drain(..drop);
            }
            let records = b.num_rows() as u64;
            let b = self.without_malformed(b, &bad)?;
            // the position counts records, malformed ones included
            self.rows += records;
            if b.num_rows() == 0 {
                continue;
            }
            SourceCounters::add(&self.counters.records, b.num_rows() as u64);
            return Ok(SourceEvent::Batch(b));
        }
    }
}
