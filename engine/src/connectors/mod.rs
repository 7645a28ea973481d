//! Sources and sinks, and the factory that builds them from a [`StreamDef`].
//!
//! A source runs on its own thread and hands Arrow batches to the query; a
//! sink receives the query's output batches on another thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::catalog::StreamDef;
use crate::error::ConnectorError;

/// Where a source is: per split (a Kafka topic's partition), the offset of
/// the next record to read. The runtime records it after batches and at
/// checkpoint barriers, and hands a recorded one back to commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// (split name, split number, next offset), ordered.
    pub splits: Vec<(String, i32, i64)>,
}

/// What a source's poll produced.
#[derive(Debug)]
pub enum SourceEvent {
    /// A batch of rows in the stream's schema.
    Batch(RecordBatch),
    /// Nothing now; more may come later (a followed file, a quiet topic).
    Idle,
    /// The source is exhausted; no more rows will come.
    End,
    /// Event time moved on to this watermark (ms): a source that carries
    /// watermarks itself (a repartition topic) gives them; the query then
    /// has no watermark of its own to compute.
    Watermark(i64),
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
    /// The stream columns the query reads (all when `None`): a source may
    /// leave the others NULL instead of decoding them.
    pub projection: Option<Vec<usize>>,
    /// Threads a source may decode on (1: on its own thread).
    pub decoders: usize,
}

impl SourceContext {
    /// A context with fresh counters.
    pub fn new(batch_size: usize) -> Self {
        Self {
            batch_size,
            counters: Arc::default(),
            shutdown: Arc::new(AtomicBool::new(false)),
            projection: None,
            decoders: 1,
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

    /// The partitions the source reads, as (topic, partition), for
    /// per-partition watermarks; empty for an unpartitioned source.
    fn partitions(&self) -> Vec<(String, i32)> {
        Vec::new()
    }

    /// How often the runtime should send a checkpoint barrier after the rows
    /// read so far; `None` (the default) for a source with no progress to commit.
    fn checkpoint_interval(&self) -> Option<Duration> {
        None
    }

    /// The position after the rows returned so far; `None` (the default)
    /// for a source with no progress to commit.
    fn position(&self) -> Option<Position> {
        None
    }

    /// Where the source is after the rows returned so far, as exactly as a
    /// restart needs to resume there (a checkpoint records it): the
    /// connector's own JSON; `None` (the default) for a source that cannot
    /// resume.
    fn resume_state(&self) -> Option<serde_json::Value> {
        None
    }

    /// Goes back to a [`Source::resume_state`] of the same source and
    /// options, before the first poll: the next rows are those that
    /// followed it.
    ///
    /// # Errors
    /// A source that cannot resume, or a state it did not write.
    fn resume(&mut self, state: &serde_json::Value) -> Result<(), ConnectorError> {
        let _ = state;
        Err(ConnectorError::Io {
            context: "resuming a source".into(),
            source: std::io::Error::other("this source cannot resume from a checkpoint"),
        })
    }

    /// The job is done with every row before `position` (written by the
    /// sink, held by no operator): commit it. `last` is the final commit of
    /// the run, which should wait for the commit to complete.
    ///
    /// # Errors
    /// The commit failed.
    fn commit(&mut self, position: &Position, last: bool) -> Result<(), ConnectorError> {
        let _ = (position, last);
        Ok(())
    }

    /// Dead-letter lines (JSON) for records the source rejected since the
    /// last call (malformed messages under `format.on_error = 'dead_letter'`).
    fn take_dead_letters(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// A consumer of a query's output batches.
pub trait Sink: Send {
    /// Writes one batch.
    ///
    /// # Errors
    /// I/O or encoding failures; the query stops with the error.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError>;

    /// Makes everything written so far durable (a Kafka sink waits for the
    /// broker's acknowledgements); called before source offsets are committed.
    ///
    /// # Errors
    /// A write that failed or did not complete.
    fn flush(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// The query's watermark advanced to `watermark` (ms of event time)
    /// after the rows written so far (`i64::MAX` once the input has ended):
    /// a sink that carries event time on (a repartition topic) passes it.
    /// `idle`: the source has had no input for its `idle_timeout` (its
    /// watermark moves on with the wall clock). Ignored by default.
    ///
    /// # Errors
    /// The watermark cannot be written.
    fn watermark(&mut self, watermark: i64, idle: bool) -> Result<(), ConnectorError> {
        let _ = (watermark, idle);
        Ok(())
    }

    /// Flushes everything written; called once at the end of the query
    /// (its sources ended, or it was stopped).
    ///
    /// # Errors
    /// I/O failures while flushing.
    fn close(&mut self) -> Result<(), ConnectorError>;

    /// The query failed: instead of [`Sink::close`], undo what can be undone
    /// (a file sink keeps the previous output of a bounded run).
    fn abort(&mut self) {
        let _ = self.close();
    }

    /// What a checkpoint records of the sink, called right after
    /// [`Sink::flush`] at each barrier (and after [`Sink::close`] at the end
    /// of the input): what [`Sink::recover`] needs to undo every row
    /// written after it (a file's length). `null` (the default) for a sink
    /// that cannot undo rows: it is at-least-once.
    ///
    /// # Errors
    /// The sink cannot make its rows durable.
    fn checkpoint_state(&mut self) -> Result<serde_json::Value, ConnectorError> {
        Ok(serde_json::Value::Null)
    }

    /// Called once, before the first row, when the query takes durable
    /// checkpoints: `state` is the sink's [`Sink::checkpoint_state`] in the
    /// checkpoint the query resumes from (rows written after it are undone),
    /// `None` on a fresh start.
    ///
    /// # Errors
    /// The output cannot be brought back to that state.
    fn recover(&mut self, state: Option<&serde_json::Value>) -> Result<(), ConnectorError> {
        let _ = state;
        Ok(())
    }

    /// Whether the sink commits its output only with durable checkpoints
    /// (a transactional Kafka sink): then the query needs checkpoints, and
    /// rows after a barrier wait until its checkpoint is durable and
    /// [`Sink::checkpoint_durable`] committed what came before.
    fn commits_with_checkpoints(&self) -> bool {
        false
    }

    /// Called first when a checkpointed query `query` starts, whose
    /// checkpoints this run writes as run `run`: a sink that commits with
    /// checkpoints gets ready (fencing an older instance of the query) and
    /// says which checkpoint its last committed output belongs to (id 0:
    /// none yet), which the query then resumes from. `None` (the default):
    /// the sink does not decide.
    ///
    /// # Errors
    /// The sink cannot get ready (a broker refuses, the instance is fenced).
    fn prepare_checkpoints(
        &mut self,
        query: &str,
        (run, earlier): (&str, &[String]),
    ) -> Result<Option<crate::checkpoint::CheckpointRef>, ConnectorError> {
        let _ = (query, run, earlier);
        Ok(None)
    }

    /// Checkpoint `id` is durable (holding the sources' states `sources`):
    /// a sink that commits with checkpoints commits what was written before
    /// its barrier.
    ///
    /// # Errors
    /// The commit failed (the query stops; a restart re-runs the epoch).
    fn checkpoint_durable(
        &mut self,
        id: u64,
        sources: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<(), ConnectorError> {
        let _ = (id, sources);
        Ok(())
    }
}

/// What a sink is told when it is opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct SinkContext {
    /// The query's input ends by itself (a file read once, a bounded Kafka
    /// scan, a generator with a number of events): its output can be
    /// written aside and put in place at the end.
    pub bounded_input: bool,
}

/// The columns a connector provides when `CREATE STREAM` lists none
/// (e.g. the Nexmark generator), or `None` if columns must be declared.
///
/// # Errors
/// Bad options that make the schema unknowable.
pub fn inferred_schema(def: &StreamDef) -> Result<Option<SchemaRef>, ConnectorError> {
    registry::of(def)?.inferred_schema(def)
}

/// Checks a stream's connector and options when it is created, so mistakes
/// surface at `CREATE STREAM` rather than at run time.
///
/// # Errors
/// [`ConnectorError::Config`] naming the unknown connector or bad option.
pub fn validate(def: &StreamDef) -> Result<(), ConnectorError> {
    registry::of(def)?.validate(def)
}

/// Opens a source for `def` producing batches in `def.schema`.
///
/// # Errors
/// Bad options, a missing file, or a connector that cannot be read from.
pub fn open_source(
    def: &StreamDef,
    ctx: &SourceContext,
) -> Result<Box<dyn Source>, ConnectorError> {
    registry::of(def)?.open_source(def, ctx)
}

/// Opens a sink for `def` that receives batches of `schema`.
///
/// # Errors
/// Bad options or a file that cannot be created.
pub fn open_sink(
    def: &StreamDef,
    schema: SchemaRef,
    ctx: &SinkContext,
) -> Result<Box<dyn Sink>, ConnectorError> {
    registry::of(def)?.open_sink(def, schema, ctx)
}

/// Whether reading `def` ends by itself (see [`registry::Connector::is_bounded`]).
///
/// # Errors
/// An unknown connector.
pub fn is_bounded(def: &StreamDef) -> Result<bool, ConnectorError> {
    Ok(registry::of(def)?.is_bounded(def))
}

pub(crate) mod avro;
pub(crate) mod blackhole;
pub(crate) mod csv_format;
pub mod dead_letter;
pub(crate) mod decode_pool;
pub(crate) mod encode;
pub(crate) mod file;
pub(crate) mod file_sink;
pub(crate) mod json;
pub(crate) mod json_types;
pub(crate) mod kafka;
pub mod message_values;
pub mod nexmark;
pub(crate) mod projection;
pub(crate) mod protobuf;
pub mod registry;
pub(crate) mod stdout;
