//! The `file` connector: a JSON-lines or CSV source (optionally following a
//! growing file) and a JSON-lines / CSV sink.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::catalog::StreamDef;
use crate::connectors::csv_format::{CsvDecoder, CsvFormat};
use crate::connectors::decode_pool::DecodePool;
use crate::connectors::encode::Format;
use crate::connectors::file_sink::FileSink;
use crate::connectors::json::{Chunk, Decoded, JsonDecoder, OnError};
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
    o.check_known(
        &[
            KNOWN,
            crate::connectors::csv_format::KEYS,
            crate::connectors::avro::KEYS,
        ]
        .concat(),
    )?;
    o.require("path")?;
    if is_avro(o) {
        // an Avro container file: read only, its schema in its header
        return match crate::connectors::avro::SchemaSource::from_options(o, None)? {
            crate::connectors::avro::SchemaSource::Registry { .. } => Err(o.error(
                "a container file carries its schema: 'avro.schema-registry.url' is for Kafka",
            )),
            _ => OnError::from_options(o).map(|_| ()),
        };
    }
    if let Some(k) = crate::connectors::avro::KEYS
        .iter()
        .find(|k| o.get(k).is_some())
    {
        return Err(o.error(format!("option '{k}' is for 'format' = 'avro'")));
    }
    Format::from_options(o)?;
    o.bool_or("follow", false)?;
    OnError::from_options(o)?;
    JsonTypes::from_options(o)?;
    CsvFormat::from_options(o)?;
    o.duration_ms_or("flush.interval", 1000)?;
    Ok(())
}

/// Whether `format = 'avro'`.
pub(crate) fn is_avro(o: &crate::catalog::Options) -> bool {
    o.get("format")
        .is_some_and(|f| f.eq_ignore_ascii_case("avro"))
}

/// The decoder of a file source's chunks of lines.
pub(crate) enum LineDecoder {
    Json(JsonDecoder),
    Csv(CsvDecoder),
}

impl crate::connectors::decode_pool::Decode for LineDecoder {
    type Input = Chunk;
    type Output = Decoded;

    fn decode(&mut self, chunk: &Chunk) -> Result<Decoded, ConnectorError> {
        match self {
            LineDecoder::Json(d) => crate::connectors::decode_pool::Decode::decode(d, chunk),
            LineDecoder::Csv(d) => d.decode(chunk),
        }
    }
}

/// The first line of the file at `path` (a CSV header), without its end.
fn first_line(path: &str) -> Option<Vec<u8>> {
    use std::io::BufRead;
    let mut line = Vec::new();
    std::io::BufReader::new(File::open(path).ok()?)
        .read_until(b'\n', &mut line)
        .ok()?;
    // a UTF-8 byte-order mark is not part of the first name
    if line.starts_with(b"\xEF\xBB\xBF") {
        line.drain(..3);
    }
    Some(line)
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

    fn delivery(&self, _def: &StreamDef) -> &'static str {
        "exactly-once with --checkpoint-dir"
    }

    fn exactly_once(&self, _def: &StreamDef) -> bool {
        true
    }

    fn open_source(
        &self,
        def: &StreamDef,
        ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, ConnectorError> {
        if is_avro(&def.options) {
            return Ok(Box::new(
                crate::connectors::avro::file::AvroFileSource::open(def, ctx)?,
            ));
        }
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

/// Where a file source is: `offset`, the byte where a line starts, with
/// `lines` lines before it, and `rows` rows decoded from there on already
/// handed on. [`FileSource::seek`] goes back there: the rows decoded after
/// `offset` are the same on every read of the same bytes, so skipping
/// `rows` of them resumes exactly, however the chunks fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FilePosition {
    /// A line's first byte.
    pub offset: u64,
    /// Lines before it.
    pub lines: u64,
    /// Rows from there on already handed on.
    pub rows: u64,
}

/// Reads JSON lines from a file: chunks split at line boundaries, decoded on
/// `SourceContext::decoders` threads (results in file order), only the
/// columns the query reads (`SourceContext::projection`).
pub struct FileSource {
    stream: String,
    path: String,
    file: File,
    pool: DecodePool<LineDecoder>,
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
    /// Rows to hand on, each with the position after it (no rows: a chunk
    /// of blank or skipped lines, which moves the position only).
    pending: VecDeque<(Option<RecordBatch>, FilePosition)>,
    /// Bytes read into chunks so far (where the next chunk starts).
    read_bytes: u64,
    /// The position after the rows handed on.
    position: FilePosition,
    /// After a seek: rows still to skip, and the position they count from.
    skip: Option<FilePosition>,
    batch_size: usize,
    counters: Arc<SourceCounters>,
    shutdown: Arc<AtomicBool>,
    /// Following: the path is gone (said once on stderr).
    missing: bool,
    /// Malformed records' dead letters not yet taken.
    dead_letters: Vec<String>,
}

impl FileSource {
    /// Opens the file of `def`.
    ///
    /// # Errors
    /// Bad options, or a file that cannot be opened.
    pub fn open(def: &StreamDef, ctx: &SourceContext) -> Result<Self, ConnectorError> {
        validate(def)?;
        let o = &def.options;
        let csv = o
            .get("format")
            .is_some_and(|f| f.eq_ignore_ascii_case("csv"));
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
        let pool = if csv {
            let format = CsvFormat::from_options(o)?;
            let fields = format.columns(def, &schema, first_line(&path).as_deref())?;
            DecodePool::new(&def.name, ctx.decoders, || {
                Ok(LineDecoder::Csv(CsvDecoder::new(
                    schema.clone(),
                    path.clone(),
                    on_error,
                    format.clone(),
                    fields.clone(),
                )))
            })?
        } else {
            DecodePool::new(&def.name, ctx.decoders, || {
                Ok(LineDecoder::Json(
                    JsonDecoder::new(schema.clone(), path.clone(), on_error)?.with_types(types)?,
                ))
            })?
        };
        Ok(Self {
            stream: def.name.clone(),
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
            read_bytes: 0,
            position: FilePosition::default(),
            skip: None,
            batch_size: ctx.batch_size.max(1),
            counters: ctx.counters.clone(),
            shutdown: ctx.shutdown.clone(),
            missing: false,
            dead_letters: Vec::new(),
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
        self.read_bytes = 0;
        Ok(())
    }

    /// Goes to `at` (a position this source reported for the same file):
    /// the next rows are those that followed it. Before the first poll.
    ///
    /// # Errors
    /// The file cannot be positioned, or rows were read already.
    fn seek(&mut self, at: FilePosition) -> Result<(), ConnectorError> {
        use std::io::{Seek, SeekFrom};
        if self.read_bytes > 0 || self.done {
            return Err(ConnectorError::Io {
                context: format!("seeking in '{}'", self.path),
                source: std::io::Error::other("the source has read already"),
            });
        }
        self.file
            .seek(SeekFrom::Start(at.offset))
            .map_err(|e| ConnectorError::Io {
                context: format!("seeking to byte {} of '{}'", at.offset, self.path),
                source: e,
            })?;
        self.read_bytes = at.offset;
        self.lines = at.lines;
        self.position = at;
        self.skip = (at.rows > 0).then_some(at);
        Ok(())
    }

    /// Hands whole lines to the decoders.
    fn submit(&mut self, mut chunk: Vec<u8>) {
        let first_line = self.lines + 1;
        let raw = chunk.len() as u64;
        // a UTF-8 byte-order mark (some editors write one) is not part of line 1
        if first_line == 1 && chunk.starts_with(b"\xEF\xBB\xBF") {
            chunk.drain(..3);
        }
        let start = self.read_bytes;
        self.read_bytes += raw;
        let mut chunk = Chunk::of(chunk, first_line);
        chunk.span = (start, self.read_bytes);
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
        let ((start, end), lines) = (chunk.span, chunk.first_line - 1);
        let after = FilePosition {
            offset: end,
            lines: lines + chunk.newlines,
            rows: 0,
        };
        self.pool.recycle(chunk);
        SourceCounters::add(&self.counters.malformed, decoded.skipped);
        for m in &decoded.malformed {
            let letter = m.to_json_line(&self.stream, &self.path);
            self.dead_letters.push(letter);
        }
        let mut b = self.projection.expand(decoded.batch)?;
        // after a seek, rows already handed on are skipped (they may run
        // on past this chunk); positions inside the chunk count rows from
        // its start, skipped ones included
        let mut skipped = 0;
        if let Some(at) = self.skip.take() {
            skipped = (at.rows as usize).min(b.num_rows());
            b = b.slice(skipped, b.num_rows() - skipped);
            if (skipped as u64) < at.rows {
                self.skip = Some(FilePosition {
                    rows: at.rows - skipped as u64,
                    ..at
                });
            }
        }
        let base = FilePosition {
            offset: start,
            lines,
            rows: skipped as u64,
        };
        let mut offset = 0;
        while offset < b.num_rows() {
            let n = self.batch_size.min(b.num_rows() - offset);
            offset += n;
            let at = if offset == b.num_rows() {
                after
            } else {
                FilePosition {
                    rows: base.rows + offset as u64,
                    ..base
                }
            };
            self.pending.push_back((Some(b.slice(offset - n, n)), at));
        }
        if b.num_rows() == 0 {
            self.pending.push_back((None, after));
        }
        Ok(true)
    }
}

impl Source for FileSource {
    /// A [`FilePosition`].
    fn resume_state(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self.position).ok()
    }

    fn take_dead_letters(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dead_letters)
    }

    fn resume(&mut self, state: &serde_json::Value) -> Result<(), ConnectorError> {
        let at: FilePosition =
            serde_json::from_value(state.clone()).map_err(|e| ConnectorError::Io {
                context: format!("resuming '{}'", self.path),
                source: std::io::Error::other(format!("not a file position: {e}")),
            })?;
        self.seek(at)
    }

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
            if let Some((rows, at)) = self.pending.pop_front() {
                self.position = at;
                if let Some(b) = rows {
                    SourceCounters::add(&self.counters.records, b.num_rows() as u64);
                    return Ok(SourceEvent::Batch(b));
                }
                continue;
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
#[path = "file_tests.rs"]
mod tests;
