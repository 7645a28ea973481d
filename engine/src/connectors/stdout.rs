//! The `stdout` connector: JSON lines or CSV on standard output, flushed
//! after every batch so results appear as they are emitted.

use std::io::{ErrorKind, Write};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::catalog::StreamDef;
use crate::connectors::Sink;
use crate::connectors::encode::{Encoder, Format};
use crate::error::ConnectorError;

/// Checks the options of a `stdout` stream.
///
/// # Errors
/// Unknown options or a bad `format`.
pub fn validate(def: &StreamDef) -> Result<(), ConnectorError> {
    def.options.check_known(&["format"])?;
    Format::from_options(&def.options)?;
    Ok(())
}

/// The stream a bare `SELECT` writes to: JSON lines on standard output.
pub(crate) fn console_stream(schema: SchemaRef) -> StreamDef {
    StreamDef {
        name: "stdout".into(),
        schema,
        watermark: None,
        primary_key: Vec::new(),
        options: crate::catalog::Options::new(
            "stdout",
            [("connector".to_string(), "stdout".to_string())],
        ),
        event_time: Default::default(),
        pos: Default::default(),
    }
}

/// EXPLAIN's parameters of [`console_stream`].
pub(crate) fn console_explain_params() -> Vec<(String, String)> {
    vec![
        ("connector".to_string(), "stdout".to_string()),
        ("format".to_string(), "json".to_string()),
    ]
}

/// The `stdout` connector (write only).
pub struct Stdout;

impl crate::connectors::registry::Connector for Stdout {
    fn name(&self) -> &'static str {
        "stdout"
    }

    fn validate(&self, def: &StreamDef) -> Result<(), ConnectorError> {
        validate(def)
    }

    fn can_write(&self) -> bool {
        true
    }

    fn open_sink(
        &self,
        def: &StreamDef,
        schema: SchemaRef,
        _ctx: &crate::connectors::SinkContext,
    ) -> Result<Box<dyn Sink>, ConnectorError> {
        Ok(Box::new(StdoutSink::open(def, schema)?))
    }
}

/// Writes to standard output. When the reader goes away (a closed pipe, as
/// in `eddy run q.sql | head`), further output is dropped quietly.
pub struct StdoutSink {
    encoder: Encoder,
    buf: Vec<u8>,
    closed: bool,
}

impl StdoutSink {
    /// A sink for batches of `schema`.
    ///
    /// # Errors
    /// Bad options.
    pub fn open(def: &StreamDef, schema: SchemaRef) -> Result<Self, ConnectorError> {
        validate(def)?;
        let mut encoder = Encoder::new(Format::from_options(&def.options)?, &schema);
        let buf = encoder.take_header().unwrap_or_default();
        Ok(Self {
            encoder,
            buf,
            closed: false,
        })
    }
}

impl Sink for StdoutSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        if self.closed {
            return Ok(());
        }
        self.encoder.encode(batch, &mut self.buf);
        let mut out = std::io::stdout().lock();
        let result = out.write_all(&self.buf).and_then(|()| out.flush());
        self.buf.clear();
        match result {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(ConnectorError::Io {
                context: "writing to stdout".into(),
                source: e,
            }),
            Ok(()) => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        if !self.buf.is_empty() && !self.closed {
            // a CSV header with no rows
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&self.buf).and_then(|()| out.flush());
        }
        Ok(())
    }
}
