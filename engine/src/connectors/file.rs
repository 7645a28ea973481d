//! The `file` connector: a JSON-lines source (optionally following a growing
//! file) and a JSON-lines / CSV sink.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::catalog::StreamDef;
use crate::connectors::encode::{Encoder, Format};
use crate::connectors::json::{JsonDecoder, OnError};
use crate::connectors::{Sink, Source, SourceContext, SourceCounters, SourceEvent};
use crate::error::ConnectorError;

const KNOWN: &[&str] = &["path", "format", "follow", "format.on_error"];
/// Bytes read per chunk.
const CHUNK: usize = 4 << 20;

/// Checks the options of a `file` stream.
///
/// # Errors
/// Unknown options, a missing `path`, bad values.
pub fn validate(def: &StreamDef) -> Result<(), ConnectorError> {
    let o = &def.options;
    o.check_known(KNOWN)?;
    o.require("path")?;
    Format::from_options(o)?;
    o.bool_or("follow", false)?;
    OnError::from_options(o)?;
    Ok(())
}

/// Reads JSON lines from a file.
pub struct FileSource {
    path: String,
    file: File,
    decoder: JsonDecoder,
    /// Bytes read but not yet decoded (an incomplete last line).
    carry: Vec<u8>,
    /// Lines decoded so far.
    lines: u64,
    follow: bool,
    done: bool,
    pending: VecDeque<RecordBatch>,
    batch_size: usize,
    counters: Arc<SourceCounters>,
    shutdown: Arc<AtomicBool>,
}

impl FileSource {
    /// Opens the file of `def`.
    ///
    /// # Errors
    /// Bad options, or a file that cannot be opened.
    pub fn open(def: &StreamDef, ctx: &SourceContext) -> Result<Self, ConnectorError> {
        validate(def)?;
        let o = &def.options;
        if o.get("format")
            .is_some_and(|f| !f.eq_ignore_ascii_case("json"))
        {
            return Err(o.error(
                "a file source reads JSON lines only; set format = 'json' or leave it out",
            ));
        }
        let path = o.require("path")?.to_string();
        let file = File::open(&path).map_err(|e| ConnectorError::Io {
            context: format!(
                "stream '{}': cannot open '{path}' (check the 'path' option)",
                def.name
            ),
            source: e,
        })?;
        Ok(Self {
            decoder: JsonDecoder::new(def.schema.clone(), path.clone(), OnError::from_options(o)?)?,
            path,
            file,
            carry: Vec::new(),
            lines: 0,
            follow: o.bool_or("follow", false)?,
            done: false,
            pending: VecDeque::new(),
            batch_size: ctx.batch_size.max(1),
            counters: ctx.counters.clone(),
            shutdown: ctx.shutdown.clone(),
        })
    }

    /// Decodes whole lines and queues their rows in batches of `batch_size`.
    fn decode(&mut self, chunk: &[u8]) -> Result<(), ConnectorError> {
        let first_line = self.lines + 1;
        self.lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        let decoded = self.decoder.decode(chunk, first_line)?;
        SourceCounters::add(&self.counters.malformed, decoded.skipped);
        let b = decoded.batch;
        let mut offset = 0;
        while offset < b.num_rows() {
            let n = self.batch_size.min(b.num_rows() - offset);
            self.pending.push_back(b.slice(offset, n));
            offset += n;
        }
        Ok(())
    }
}

impl Source for FileSource {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        if let Some(b) = self.pending.pop_front() {
            SourceCounters::add(&self.counters.records, b.num_rows() as u64);
            return Ok(SourceEvent::Batch(b));
        }
        if self.done {
            return Ok(SourceEvent::End);
        }
        let start = self.carry.len();
        self.carry.resize(start + CHUNK, 0);
        let n = self
            .file
            .read(&mut self.carry[start..])
            .map_err(|e| ConnectorError::Io {
                context: format!("reading '{}'", self.path),
                source: e,
            })?;
        self.carry.truncate(start + n);
        SourceCounters::add(&self.counters.bytes, n as u64);
        if n == 0 {
            if self.follow && !self.shutdown.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                return Ok(SourceEvent::Idle);
            }
            // the input ended: a last line without a newline still counts
            self.done = true;
            let rest = std::mem::take(&mut self.carry);
            if !rest.iter().all(u8::is_ascii_whitespace) {
                self.decode(&rest)?;
            }
            return self.poll();
        }
        if let Some(last_nl) = self.carry.iter().rposition(|&b| b == b'\n') {
            let rest = self.carry.split_off(last_nl + 1);
            let complete = std::mem::replace(&mut self.carry, rest);
            self.decode(&complete)?;
        }
        self.poll_pending_or_idle()
    }
}

impl FileSource {
    fn poll_pending_or_idle(&mut self) -> Result<SourceEvent, ConnectorError> {
        match self.pending.pop_front() {
            Some(b) => {
                SourceCounters::add(&self.counters.records, b.num_rows() as u64);
                Ok(SourceEvent::Batch(b))
            }
            None => Ok(SourceEvent::Idle),
        }
    }
}

/// Writes JSON lines or CSV to a file (created or truncated).
pub struct FileSink {
    path: String,
    out: BufWriter<File>,
    encoder: Encoder,
    buf: Vec<u8>,
}

impl FileSink {
    /// Creates the file of `def`.
    ///
    /// # Errors
    /// Bad options or a file that cannot be created.
    pub fn open(def: &StreamDef, schema: SchemaRef) -> Result<Self, ConnectorError> {
        validate(def)?;
        let path = def.options.require("path")?.to_string();
        let file = File::create(&path).map_err(|e| ConnectorError::Io {
            context: format!(
                "stream '{}': cannot create '{path}' (check the 'path' option)",
                def.name
            ),
            source: e,
        })?;
        let mut encoder = Encoder::new(Format::from_options(&def.options)?, &schema);
        let mut out = BufWriter::with_capacity(1 << 20, file);
        if let Some(h) = encoder.take_header() {
            out.write_all(&h).map_err(|e| ConnectorError::Io {
                context: format!("writing '{path}'"),
                source: e,
            })?;
        }
        Ok(Self {
            path,
            out,
            encoder,
            buf: Vec::new(),
        })
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        self.buf.clear();
        self.encoder.encode(batch, &mut self.buf);
        self.out
            .write_all(&self.buf)
            .map_err(|e| ConnectorError::Io {
                context: format!("writing '{}'", self.path),
                source: e,
            })
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.close()
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        self.out.flush().map_err(|e| ConnectorError::Io {
            context: format!("writing '{}'", self.path),
            source: e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Options;
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    fn def(path: &str, extra: &[(&str, &str)]) -> StreamDef {
        let mut opts = vec![
            ("connector".to_string(), "file".to_string()),
            ("path".to_string(), path.to_string()),
        ];
        opts.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        StreamDef {
            name: "s".into(),
            schema: Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)])),
            watermark: None,
            options: Options::new("s", opts),
            pos: Default::default(),
        }
    }

    fn drain(src: &mut FileSource) -> Result<Vec<i64>, ConnectorError> {
        let mut out = Vec::new();
        loop {
            match src.poll()? {
                SourceEvent::Batch(b) => {
                    out.extend(b.column(0).as_primitive::<Int64Type>().values().iter())
                }
                SourceEvent::Idle => {}
                SourceEvent::End => return Ok(out),
            }
        }
    }

    #[test]
    fn reads_batches_and_a_last_line_without_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}").unwrap();
        let ctx = SourceContext::new(2);
        let mut src = FileSource::open(&def(p.to_str().unwrap(), &[]), &ctx).unwrap();
        assert_eq!(drain(&mut src).unwrap(), [1, 2, 3]);
        assert_eq!(ctx.counters.records.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn malformed_lines_skip_or_fail_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"a\":}\n{\"a\":3}\n").unwrap();
        let ctx = SourceContext::new(10);
        let mut src = FileSource::open(
            &def(p.to_str().unwrap(), &[("format.on_error", "skip")]),
            &ctx,
        )
        .unwrap();
        assert_eq!(drain(&mut src).unwrap(), [1, 3]);
        assert_eq!(ctx.counters.malformed.load(Ordering::Relaxed), 1);
        let mut src =
            FileSource::open(&def(p.to_str().unwrap(), &[]), &SourceContext::new(10)).unwrap();
        let e = drain(&mut src).unwrap_err().to_string();
        assert!(e.contains("malformed record at line 2"), "{e}");
    }

    #[test]
    fn follow_picks_up_appended_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grow.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"a\":").unwrap();
        let ctx = SourceContext::new(10);
        let mut src =
            FileSource::open(&def(p.to_str().unwrap(), &[("follow", "true")]), &ctx).unwrap();
        let mut seen: Vec<i64> = Vec::new();
        let mut appended = false;
        for _ in 0..200 {
            match src.poll().unwrap() {
                SourceEvent::Batch(b) => {
                    seen.extend(b.column(0).as_primitive::<Int64Type>().values().iter())
                }
                SourceEvent::Idle if !appended => {
                    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
                    f.write_all(b"2}\n{\"a\":3}\n").unwrap();
                    appended = true;
                }
                SourceEvent::Idle if seen.len() == 3 => ctx.shutdown.store(true, Ordering::Relaxed),
                SourceEvent::Idle => {}
                SourceEvent::End => break,
            }
        }
        assert_eq!(seen, [1, 2, 3]);
    }

    #[test]
    fn missing_file_and_bad_options_are_clear() {
        let e = FileSource::open(&def("/nonexistent/x.jsonl", &[]), &SourceContext::new(1))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("stream 's': cannot open '/nonexistent/x.jsonl'"),
            "{e}"
        );
        let e = validate(&def("x", &[("format", "xml")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "stream 's': option 'format' = 'xml' must be one of: json, csv"
        );
    }

    #[test]
    fn sink_round_trips_through_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        let d = def(p.to_str().unwrap(), &[]);
        let mut sink = FileSink::open(&d, d.schema.clone()).unwrap();
        let b = RecordBatch::try_new(
            d.schema.clone(),
            vec![Arc::new(arrow::array::Int64Array::from(vec![7, 8]))],
        )
        .unwrap();
        sink.write(&b).unwrap();
        sink.close().unwrap();
        let mut src = FileSource::open(&d, &SourceContext::new(10)).unwrap();
        assert_eq!(drain(&mut src).unwrap(), [7, 8]);
    }
}
