//! Sources and sinks, and the factory that builds them from a [`StreamDef`].
//!
//! A source runs on its own thread and hands Arrow batches to the query; a
//! sink receives the query's output batches on another thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::catalog::StreamDef;
use crate::error::ConnectorError;

/// What a source's poll produced.
#[derive(Debug)]
pub enum SourceEvent {
    /// A batch of rows in the stream's schema.
    Batch(RecordBatch),
    /// Nothing now; more may come later (a followed file, a quiet topic).
    Idle,
    /// The source is exhausted; no more rows will come.
    End,
}

/// Counters a source updates while it runs; read by the progress line and stats.
#[derive(Debug, Default)]
pub struct SourceCounters {
    /// Rows handed to the query.
    pub records: AtomicU64,
    /// Malformed input records that were counted and skipped.
    pub malformed: AtomicU64,
    /// Input bytes read.
    pub bytes: AtomicU64,
}

impl SourceCounters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What a source is given when it is opened.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// Preferred number of rows per batch.
    pub batch_size: usize,
    /// Counters to update.
    pub counters: Arc<SourceCounters>,
    /// Set when the query is being stopped; a blocking source must notice it.
    pub shutdown: Arc<AtomicBool>,
}

impl SourceContext {
    /// A context with fresh counters.
    pub fn new(batch_size: usize) -> Self {
        Self {
            batch_size,
            counters: Arc::default(),
            shutdown: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A producer of record batches.
pub trait Source: Send {
    /// The next batch, `Idle` when none is ready yet, or `End`.
    ///
    /// Must not block for long (at most ~100 ms), so the caller can notice
    /// shutdown and advance idle watermarks.
    ///
    /// # Errors
    /// A failure that ends the query: I/O, or a malformed record under the
    /// `fail` policy (with its line number).
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError>;
}

/// A consumer of a query's output batches.
pub trait Sink: Send {
    /// Writes one batch.
    ///
    /// # Errors
    /// I/O or encoding failures; the query stops with the error.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError>;

    /// Flushes everything written; called once at the end of the query.
    ///
    /// # Errors
    /// I/O failures while flushing.
    fn close(&mut self) -> Result<(), ConnectorError>;
}

/// The columns a connector provides when `CREATE STREAM` lists none
/// (e.g. the Nexmark generator), or `None` if columns must be declared.
///
/// # Errors
/// Bad options that make the schema unknowable.
pub fn inferred_schema(def: &StreamDef) -> Result<Option<SchemaRef>, ConnectorError> {
    match def.connector() {
        "nexmark" => nexmark::schema_for(&def.options).map(Some),
        _ => Ok(None),
    }
}

/// Checks a stream's connector and options when it is created, so mistakes
/// surface at `CREATE STREAM` rather than at run time.
///
/// # Errors
/// [`ConnectorError::Config`] naming the unknown connector or bad option.
pub fn validate(def: &StreamDef) -> Result<(), ConnectorError> {
    crate::catalog::EventTimeOptions::from_options(&def.options)?;
    match def.connector() {
        "nexmark" => nexmark::validate(def),
        "file" => file::validate(def),
        "stdout" => stdout::validate(def),
        "" => Err(def
            .options
            .error("missing option 'connector'; use one of: nexmark, file, stdout")),
        other => Err(def.options.error(format!(
            "unknown connector '{other}'; use one of: nexmark, file, stdout"
        ))),
    }
}

/// Opens a source for `def` producing batches in `def.schema`.
///
/// # Errors
/// Bad options, a missing file, or a connector that cannot be read from.
pub fn open_source(
    def: &StreamDef,
    ctx: &SourceContext,
) -> Result<Box<dyn Source>, ConnectorError> {
    match def.connector() {
        "nexmark" => Ok(Box::new(nexmark::NexmarkSource::open(def, ctx)?)),
        "file" => Ok(Box::new(file::FileSource::open(def, ctx)?)),
        other => Err(def.options.error(format!(
            "connector '{other}' cannot be read from; use nexmark or file"
        ))),
    }
}

/// Opens a sink for `def` that receives batches of `schema`.
///
/// # Errors
/// Bad options or a file that cannot be created.
pub fn open_sink(def: &StreamDef, schema: SchemaRef) -> Result<Box<dyn Sink>, ConnectorError> {
    match def.connector() {
        "file" => Ok(Box::new(file::FileSink::open(def, schema)?)),
        "stdout" => Ok(Box::new(stdout::StdoutSink::open(def, schema)?)),
        other => Err(def.options.error(format!(
            "connector '{other}' cannot be written to; use file or stdout"
        ))),
    }
}

pub mod dead_letter;
pub mod encode;
pub mod file;
pub mod json;
pub mod nexmark;
pub mod stdout;
