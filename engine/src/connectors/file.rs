//! The `file` connector: a JSON-lines source (optionally following a growing
//! file) and a JSON-lines / CSV sink.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::catalog::StreamDef;
use crate::connectors::decode_pool::DecodePool;
use crate::connectors::encode::Format;
use crate::connectors::file_sink::FileSink;
use crate::connectors::json::{Chunk, JsonDecoder, OnError};
use crate::connectors::json_types::JsonTypes;
use crate::connectors::projection::Projection;
use crate::connectors::{Sink, Source, SourceContext, SourceCounters, SourceEvent};
use crate::error::ConnectorError;

const KNOWN: &[&str] = &[
    "path",
    "format",
    "follow",
    "format.on_error",
    "json.lenient",
    "flush.interval",
];
/// Bytes read per chunk.
const CHUNK: usize = 512 << 10;

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
    JsonTypes::from_options(o)?;
    o.duration_ms_or("flush.interval", 1000)?;
    Ok(())
}

/// The `file` connector: JSON lines in, JSON lines or CSV out.
pub struct FileConnector;

impl crate::connectors::registry::Connector for FileConnector {
    fn name(&self) -> &'static str {
        "file"
    }

    fn validate(&self, def: &StreamDef) -> Result<(), ConnectorError> {
        validate(def)
    }

    fn can_read(&self) -> bool {
        true
    }

    fn can_write(&self) -> bool {
        true
    }

    fn open_source(
        &self,
        def: &StreamDef,
        ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, ConnectorError> {
        Ok(Box::new(FileSource::open(def, ctx)?))
    }

    fn is_bounded(&self, def: &StreamDef) -> bool {
        !def.options.bool_or("follow", false).unwrap_or(false)
    }

    fn open_sink(
        &self,
        def: &StreamDef,
        schema: SchemaRef,
        ctx: &crate::connectors::SinkContext,
    ) -> Result<Box<dyn Sink>, ConnectorError> {
        Ok(Box::new(FileSink::open(def, schema, ctx)?))
    }
}

/// Reads JSON lines from a file: chunks split at line boundaries, decoded on
/// `SourceContext::decoders` threads (results in file order), only the
/// columns the query reads (`SourceContext::projection`).
pub struct FileSource {
    path: String,
    file: File,
    pool: DecodePool<JsonDecoder>,
    projection: Projection,
    /// Bytes read at a time.
    chunk: usize,
    /// Bytes read but not yet decoded (an incomplete last line).
    carry: Vec<u8>,
    /// Lines handed to the decoders so far.
    lines: u64,
    follow: bool,
    /// The last read found no new bytes.
    at_end: bool,
    done: bool,
    pending: VecDeque<RecordBatch>,
    batch_size: usize,
    counters: Arc<SourceCounters>,
    shutdown: Arc<AtomicBool>,
    /// Following: the path is gone (said once on stderr).
    missing: bool,
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
        let projection = Projection::new(&def.schema, ctx.projection.as_deref());
        let on_error = OnError::from_options(o)?;
        let types = JsonTypes::from_options(o)?;
        let schema = projection.decoded_schema().clone();
        let pool = DecodePool::new(&def.name, ctx.decoders, || {
            JsonDecoder::new(schema.clone(), path.clone(), on_error)?.with_types(types)
        })?;
        Ok(Self {
            pool,
            projection,
            path,
            file,
            chunk: CHUNK,
            carry: Vec::new(),
            lines: 0,
            follow: o.bool_or("follow", false)?,
            at_end: false,
            done: false,
            pending: VecDeque::new(),
            batch_size: ctx.batch_size.max(1),
            counters: ctx.counters.clone(),
            shutdown: ctx.shutdown.clone(),
            missing: false,
        })
    }

    /// Following, at the end of the file: notices what `tail -F` notices.
    /// Truncated (shorter than what was read): read again from its start.
    /// Replaced (rotated: another file at the path): the old one was read
    /// to its end; read the new one from its start. Deleted: wait for a file
    /// to appear at the path. Each is said on stderr.
    fn follow_path(&mut self) -> Result<(), ConnectorError> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::MetadataExt;
        let io = |e| ConnectorError::Io {
            context: format!("following '{}'", self.path),
            source: e,
        };
        let at_path = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(_) => {
                if !std::mem::replace(&mut self.missing, true) {
                    eprintln!(
                        "eddy: following '{}': the file was deleted; waiting for a new one at that path",
                        self.path
                    );
                }
                return Ok(());
            }
        };
        let open = self.file.metadata().map_err(io)?;
        let read_to = self.file.stream_position().map_err(io)?;
        let replaced = (at_path.dev(), at_path.ino()) != (open.dev(), open.ino());
        if replaced || self.missing {
            eprintln!(
                "eddy: following '{}': a new file is at that path (rotated or re-created); reading it from its start",
                self.path
            );
            self.file = File::open(&self.path).map_err(io)?;
        } else if open.len() < read_to {
            eprintln!(
                "eddy: following '{}': the file was truncated to {} bytes (from {read_to} read); reading it again from its start",
                self.path,
                open.len()
            );
            self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        } else {
            return Ok(());
        }
        // an incomplete line of the old content is dropped; lines count anew
        self.missing = false;
        self.carry.clear();
        self.lines = 0;
        Ok(())
    }

    /// Hands whole lines to the decoders.
    fn submit(&mut self, mut chunk: Vec<u8>) {
        let first_line = self.lines + 1;
        // a UTF-8 byte-order mark (some editors write one) is not part of line 1
        if first_line == 1 && chunk.starts_with(b"\xEF\xBB\xBF") {
            chunk.drain(..3);
        }
        let chunk = Chunk::of(chunk, first_line);
        self.lines += chunk.newlines;
        self.pool.submit(chunk);
    }

    /// Reads the next bytes; submits the complete lines among them. `false`
    /// when there were no new bytes.
    fn read_more(&mut self) -> Result<bool, ConnectorError> {
        let start = self.carry.len();
        self.carry.resize(start + self.chunk, 0);
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
            return Ok(false);
        }
        if let Some(last_nl) = memchr::memrchr(b'\n', &self.carry) {
            // the incomplete last line moves to a recycled buffer
            let mut rest = self.pool.spare().map(|c| c.bytes).unwrap_or_default();
            rest.clear();
            rest.extend_from_slice(&self.carry[last_nl + 1..]);
            self.carry.truncate(last_nl + 1);
            let complete = std::mem::replace(&mut self.carry, rest);
            self.submit(complete);
        }
        Ok(true)
    }

    /// Takes the oldest decoded chunk and queues its rows in batches of
    /// `batch_size`; `false` when nothing was in flight.
    fn take_decoded(&mut self) -> Result<bool, ConnectorError> {
        let Some(result) = self.pool.next() else {
            return Ok(false);
        };
        let (decoded, chunk) = result?;
        self.pool.recycle(chunk);
        SourceCounters::add(&self.counters.malformed, decoded.skipped);
        let b = self.projection.expand(decoded.batch)?;
        let mut offset = 0;
        while offset < b.num_rows() {
            let n = self.batch_size.min(b.num_rows() - offset);
            self.pending.push_back(b.slice(offset, n));
            offset += n;
        }
        Ok(true)
    }
}

impl Source for FileSource {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        loop {
            // keep every decoder busy: read ahead while there is room, before
            // handing on rows, so the decoders never wait for this thread
            while !self.done && !self.at_end && self.pool.has_room() {
                if !self.read_more()? {
                    self.at_end = true;
                }
                if self.pool.is_idle() {
                    // no complete line yet: read on at the next poll
                    break;
                }
            }
            if let Some(b) = self.pending.pop_front() {
                SourceCounters::add(&self.counters.records, b.num_rows() as u64);
                return Ok(SourceEvent::Batch(b));
            }
            if self.take_decoded()? {
                continue;
            }
            if self.done {
                return Ok(SourceEvent::End);
            }
            if !self.at_end {
                // bytes without a complete line so far
                return Ok(SourceEvent::Idle);
            }
            if self.follow && !self.shutdown.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                self.follow_path()?;
                self.at_end = false;
                return Ok(SourceEvent::Idle);
            }
            // the input ended: a last line without a newline still counts
            self.done = true;
            let rest = std::mem::take(&mut self.carry);
            if !rest.iter().all(u8::is_ascii_whitespace) {
                self.submit(rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Options;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use std::io::Write;

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
            event_time: Default::default(),
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

    /// Lines 1..=n with a malformed one every 997th, in a file of many chunks.
    fn many_chunks(dir: &std::path::Path, n: i64) -> String {
        let p = dir.join("many.jsonl");
        let text: String = (1..=n)
            .map(|i| {
                if i % 997 == 0 {
                    "{\"a\":\n".to_string()
                } else {
                    format!("{{\"a\":{i},\"b\":\"x{i}\"}}\n")
                }
            })
            .collect();
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    }

    fn read_with(
        path: &str,
        decoders: usize,
        extra: &[(&str, &str)],
    ) -> (Result<Vec<i64>, ConnectorError>, u64) {
        let mut ctx = SourceContext::new(100);
        ctx.decoders = decoders;
        let mut src = FileSource::open(&def(path, extra), &ctx).unwrap();
        src.chunk = 4096;
        let rows = drain(&mut src);
        (rows, ctx.counters.malformed.load(Ordering::Relaxed))
    }

    #[test]
    fn decoding_on_several_threads_keeps_rows_order_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = many_chunks(dir.path(), 20_000);
        let skip = [("format.on_error", "skip")];
        let (one, bad_one) = read_with(&path, 1, &skip);
        let (three, bad_three) = read_with(&path, 3, &skip);
        let one = one.unwrap();
        assert_eq!(one.len(), 20_000 - 20);
        assert_eq!(three.unwrap(), one, "same rows, same order");
        assert_eq!((bad_one, bad_three), (20, 20));
        // under 'fail' the first bad line stops the source, wherever it was decoded
        let e = read_with(&path, 3, &[]).0.unwrap_err().to_string();
        assert!(e.contains("malformed record at line 997"), "{e}");
    }

    #[test]
    fn columns_the_query_does_not_read_are_not_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.jsonl");
        std::fs::write(&p, "{\"a\":1,\"b\":2}\n{\"a\":3,\"b\":4}\n").unwrap();
        let mut d = def(p.to_str().unwrap(), &[]);
        d.schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]));
        let mut ctx = SourceContext::new(10);
        ctx.projection = Some(vec![1]);
        let mut src = FileSource::open(&d, &ctx).unwrap();
        let SourceEvent::Batch(b) = src.poll().unwrap() else {
            panic!("a batch")
        };
        assert_eq!(b.schema(), d.schema, "the stream's columns");
        assert_eq!(b.column(0).null_count(), 2, "a is not read");
        let got: Vec<i64> = b.column(1).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(got, [2, 4]);
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
        let ctx = crate::connectors::SinkContext {
            bounded_input: true,
        };
        let mut sink = FileSink::open(&d, d.schema.clone(), &ctx).unwrap();
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
