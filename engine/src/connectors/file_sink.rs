//! The `file` connector's sink: JSON lines, CSV, or an Avro object
//! container file (`connectors/avro/ocf.rs`).
//!
//! Over a bounded input (the run ends when its sources do) the rows go to a
//! hidden temporary file beside the target, renamed over it when the query
//! ends or is stopped: a run that fails, or is killed, leaves the previous
//! output as it was (a killed run may leave its `.<name>.eddy-<pid>.tmp`
//! behind), never a torn file. Over an unbounded input (a followed file, a
//! Kafka topic read forever, an endless generator) the rows go straight to
//! the target, created at the first row, so they can be read as they come.
//!
//! When the query takes durable checkpoints the rows always go straight to
//! the target, and each checkpoint records its length once flushed and
//! synced; a restart from that checkpoint cuts the file back to it before
//! going on, so every row is in the file once (exactly-once).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::catalog::StreamDef;
use crate::connectors::encode::{Encoder, Format};
use crate::connectors::{Sink, SinkContext};
use crate::error::ConnectorError;

/// Writes JSON lines or CSV to a file.
pub struct FileSink {
    stream: String,
    path: PathBuf,
    /// Where rows are written: a temporary file (bounded input) or `path`.
    target: PathBuf,
    /// Open once the first row (or the CSV header) is written.
    out: Option<BufWriter<File>>,
    encoder: Body,
    buf: Vec<u8>,
    done: bool,
    /// Bytes in the target (header included), once open.
    length: u64,
    /// Under durable checkpoints: the target is opened at this length
    /// (cut back to it), not created.
    resume_at: Option<u64>,
}

/// How rows become bytes.
enum Body {
    Text(Encoder),
    Avro(crate::connectors::avro::ocf::OcfEncoder),
}

impl Body {
    fn take_header(&mut self) -> Option<Vec<u8>> {
        match self {
            Body::Text(e) => e.take_header(),
            Body::Avro(e) => e.take_header(),
        }
    }

    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ConnectorError> {
        match self {
            Body::Text(e) => {
                e.encode(batch, out);
                Ok(())
            }
            Body::Avro(e) => e.encode(batch, out),
        }
    }
}

/// The temporary file a bounded run writes before renaming it to `path`.
fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.eddy-{}.tmp", std::process::id()))
}

impl FileSink {
    /// A sink for the file of `def`; nothing is created or truncated until
    /// the first write.
    ///
    /// # Errors
    /// Bad options.
    pub fn open(
        def: &StreamDef,
        schema: SchemaRef,
        ctx: &SinkContext,
    ) -> Result<Self, ConnectorError> {
        super::file::validate(def)?;
        let path = PathBuf::from(def.options.require("path")?);
        let encoder = if super::file::is_avro(&def.options) {
            let source = crate::connectors::avro::SchemaSource::from_options(&def.options, None)?;
            Body::Avro(crate::connectors::avro::ocf::OcfEncoder::new(
                &def.name,
                &path.display().to_string(),
                &schema,
                &source,
            )?)
        } else {
            Body::Text(Encoder::new(Format::from_options(&def.options)?, &schema))
        };
        let target = if ctx.bounded_input {
            temporary(&path)
        } else {
            path.clone()
        };
        Ok(Self {
            stream: def.name.clone(),
            path,
            target,
            out: None,
            encoder,
            buf: Vec::new(),
            done: false,
            length: 0,
            resume_at: None,
        })
    }

    fn io(&self, what: &str, e: std::io::Error) -> ConnectorError {
        ConnectorError::Io {
            context: format!(
                "stream '{}': {what} '{}'",
                self.stream,
                self.target.display()
            ),
            source: e,
        }
    }

    /// The open file, created (truncated) on first use, or cut back to the
    /// length a checkpoint recorded.
    fn file(&mut self) -> Result<&mut BufWriter<File>, ConnectorError> {
        if self.out.is_none() {
            let file = match self.resume_at {
                Some(length) if length > 0 => self.reopen(length)?,
                _ => File::create(&self.target)
                    .map_err(|e| self.io("cannot create (check the 'path' option)", e))?,
            };
            let mut out = BufWriter::with_capacity(1 << 20, file);
            if let Some(h) = self.encoder.take_header() {
                out.write_all(&h).map_err(|e| self.io("writing", e))?;
                self.length += h.len() as u64;
            }
            self.out = Some(out);
        }
        Ok(self.out.as_mut().expect("just opened"))
    }

    /// Opens the target written by an earlier run, cut back to `length`
    /// (what the checkpoint resumed from had written).
    fn reopen(&mut self, length: u64) -> Result<File, ConnectorError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.target)
            .map_err(|e| self.io("cannot reopen the output of the checkpointed run", e))?;
        let found = file
            .metadata()
            .map_err(|e| self.io("reading the size of", e))?
            .len();
        if found < length {
            return Err(ConnectorError::Io {
                context: format!(
                    "stream '{}': '{}' holds {found} bytes, but the checkpoint being restored wrote {length}",
                    self.stream,
                    self.target.display()
                ),
                source: std::io::Error::other(
                    "the file was changed outside Eddy; run with --from-scratch to write it anew",
                ),
            });
        }
        file.set_len(length)
            .map_err(|e| self.io("cutting back to the checkpoint", e))?;
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))
            .map_err(|e| self.io("seeking in", e))?;
        // the header is in the part kept
        let _ = self.encoder.take_header();
        self.length = length;
        Ok(file)
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        self.buf.clear();
        self.encoder.encode(batch, &mut self.buf)?;
        let buf = std::mem::take(&mut self.buf);
        let written = self.file()?.write_all(&buf);
        self.length += buf.len() as u64;
        self.buf = buf;
        written.map_err(|e| self.io("writing", e))
    }

    /// `{"length": bytes}` of the target, flushed and synced.
    fn checkpoint_state(&mut self) -> Result<serde_json::Value, ConnectorError> {
        if let Some(out) = &mut self.out {
            let synced = out.flush().and_then(|()| out.get_ref().sync_data());
            synced.map_err(|e| self.io("syncing", e))?;
        }
        Ok(serde_json::json!({ "length": self.length }))
    }

    /// Writes to the target itself from now on, cut back to the length in
    /// `state` when the query resumes.
    fn recover(&mut self, state: Option<&serde_json::Value>) -> Result<(), ConnectorError> {
        self.target = self.path.clone();
        let length = match state {
            None => 0,
            Some(s) => {
                s.get("length")
                    .and_then(|l| l.as_u64())
                    .ok_or_else(|| ConnectorError::Io {
                        context: format!("stream '{}': restoring the file sink", self.stream),
                        source: std::io::Error::other(format!(
                            "the checkpoint records {s}, not a file length"
                        )),
                    })?
            }
        };
        self.resume_at = Some(length);
        // what the next checkpoint records until the file is reopened
        self.length = length;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        let flushed = match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        };
        flushed.map_err(|e| self.io("writing", e))
    }

    /// Flushes; a bounded run's file is renamed into place (an empty output
    /// is still an output: the file exists, with its CSV header if any).
    fn close(&mut self) -> Result<(), ConnectorError> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        self.file()?;
        if let Some(mut out) = self.out.take() {
            out.flush().map_err(|e| self.io("writing", e))?;
            out.get_ref()
                .sync_all()
                .map_err(|e| self.io("syncing", e))?;
        }
        if self.target != self.path {
            std::fs::rename(&self.target, &self.path).map_err(|e| ConnectorError::Io {
                context: format!(
                    "stream '{}': cannot move the finished output into '{}'",
                    self.stream,
                    self.path.display()
                ),
                source: e,
            })?;
        }
        Ok(())
    }

    /// The query failed: a bounded run's temporary file is removed, so the
    /// previous output stays as it was.
    fn abort(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let out = self.out.take();
        if self.target != self.path {
            drop(out);
            let _ = std::fs::remove_file(&self.target);
        } else if let Some(mut out) = out {
            // an unbounded run's rows were visible as they came: keep them
            let _ = out.flush();
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // neither closed nor aborted (a panic): keep the previous output
        self.abort();
    }
}
