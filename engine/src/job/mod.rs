//! The job layer: a [`JobSpec`] (a plan, where its rows go, how to run it)
//! is submitted to a [`JobManager`], which builds the plan's topology (a DAG
//! of stages, see `topology.rs`), runs it on worker threads and hands back a
//! [`JobHandle`]: status, progress, stop, wait, and a subscription to the
//! rows and events. The CLI, the tests, the benches and the server are thin
//! clients of it.
//!
//! ```no_run
//! use eddy::job::{JobManager, JobSpec};
//! let script = eddy::plan_script(
//!     "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
//!        WITH (connector = 'nexmark', stream = 'bid', events = '100000');
//!      SELECT auction, window_start, COUNT(*) AS bids
//!      FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
//!      GROUP BY auction, window_start, window_end;",
//! )?;
//! let jobs = JobManager::new();
//! let job = jobs.submit(JobSpec::new("bids", script.queries[0].clone()))?;
//! let stats = job.wait()?;
//! println!("{} rows in, {} out", stats.records_in, stats.records_out);
//! # Ok::<(), eddy::EngineError>(())
//! ```

mod checkpointing;
mod edge;
pub mod instance;
mod launch;
mod live;
mod manager;
#[cfg(test)]
mod rescale_tests;
pub mod scale_out;
pub mod scale_out_explain;
#[cfg(test)]
mod scale_out_tests;
pub mod share;
mod sink_stage;
mod source_stage;
mod stage;
pub(crate) mod topology;

use std::time::Duration;

use arrow::record_batch::RecordBatch;

pub use checkpointing::{CheckpointConfig, DEFAULT_CHECKPOINT_INTERVAL};
pub use launch::{open_dead_letter_sink, open_plan_sink};
pub use live::{LiveNodes, OperatorLive};
pub use manager::{JobHandle, JobId, JobInfo, JobManager, Subscription};

use crate::connectors::dead_letter::DeadLetterSink;
use crate::connectors::{Sink, Source};
pub use crate::exec::metrics::{CheckpointStats, LastCheckpoint};
use crate::plan::physical::PhysicalPlan;

/// A query to run: its plan, where its rows and dead letters go, and how.
pub struct JobSpec {
    /// A name for listings, metrics and thread names.
    pub name: String,
    /// The plan.
    pub plan: PhysicalPlan,
    /// How to run it.
    pub options: RunOptions,
    /// Where rows go; `None`: the plan's own sink (its `INSERT INTO`
    /// stream, or stdout for a bare SELECT).
    pub sink: Option<Box<dyn Sink>>,
    /// Where dead letters go: `None` opens what the source stream asks for
    /// (`'dead_letter.path'`), if anything.
    pub dead_letters: Option<Box<dyn DeadLetterSink>>,
    /// Read from this instead of opening the plan's source stream (tests
    /// and benches feed batches from memory).
    pub source: Option<Box<dyn Source>>,
}

impl JobSpec {
    /// A job running `plan` into its own sink with default options.
    pub fn new(name: impl Into<String>, plan: PhysicalPlan) -> Self {
        Self {
            name: name.into(),
            plan,
            options: RunOptions::default(),
            sink: None,
            dead_letters: None,
            source: None,
        }
    }

    /// Runs with `options`.
    pub fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// Writes rows to `sink` instead of the plan's own sink.
    pub fn sink(mut self, sink: Box<dyn Sink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Writes dead letters to `sink` instead of where the stream says.
    pub fn dead_letters(mut self, sink: Box<dyn DeadLetterSink>) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// Reads from `source` instead of opening the plan's source stream.
    pub fn source(mut self, source: Box<dyn Source>) -> Self {
        self.source = Some(source);
        self
    }
}

/// The most partitions (worker threads) a query may have.
pub const MAX_PARTITIONS: usize = 256;

/// Options for running a query.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Rows per source batch.
    pub batch_size: usize,
    /// Batches that may wait between two stages.
    pub channel_capacity: usize,
    /// Where the workers record how long each input batch takes through the
    /// operators (see [`crate::exec::export::Exporter`]).
    pub batch_latency: Option<prometheus_client::metrics::histogram::Histogram>,
    /// The query's parallelism: worker threads sharing the keyed state of
    /// an aggregate (hash exchange on the group keys), and threads a source
    /// may decode its input on (a file read in chunks; rows and their order
    /// are the same for any number). 1 runs each on one thread.
    pub partitions: usize,
    /// The most bytes of window state the query may hold, shared evenly by
    /// its partitions; past it the query stops with an error that says so,
    /// instead of the process running out of memory (`None`: no limit).
    /// Default: half the machine's memory.
    pub max_state_bytes: Option<u64>,
    /// Durable checkpoints (`--checkpoint-dir`): the query restores the
    /// latest one at start and takes one every interval (`None`: none; the
    /// query is at-least-once through its sources' committed offsets).
    pub checkpoint: Option<CheckpointConfig>,
}

/// Half the machine's memory (`MemTotal` in `/proc/meminfo`), if known: the
/// default [`RunOptions::max_state_bytes`].
pub fn default_state_limit() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024 / 2)
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            batch_size: 8192,
            channel_capacity: 8,
            batch_latency: None,
            partitions: 1,
            max_state_bytes: default_state_limit(),
            checkpoint: None,
        }
    }
}

/// What a finished query did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryStats {
    /// Rows read from the source.
    pub records_in: u64,
    /// Rows written to the sink.
    pub records_out: u64,
    /// Malformed input records counted and skipped.
    pub malformed: u64,
    /// Rows too late for any open window: dropped or dead-lettered.
    pub late_dropped: u64,
    /// Rows behind the watermark but within the allowed lateness (applied).
    pub late_accepted: u64,
    /// Rows sent to the dead-letter sink.
    pub dead_letters: u64,
    /// Rows dropped because their event time was NULL.
    pub null_time_dropped: u64,
    /// Last watermark (ms), if any.
    pub watermark: Option<i64>,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Checkpoints taken, the last one, and the one the run resumed from.
    pub checkpoints: CheckpointStats,
}

impl QueryStats {
    /// Input records per second.
    pub fn rate(&self) -> f64 {
        self.records_in as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A snapshot of a running job's progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Rows read so far.
    pub records_in: u64,
    /// Rows written so far.
    pub records_out: u64,
    /// Malformed input records so far.
    pub malformed: u64,
    /// Rows too late for any open window so far.
    pub late_dropped: u64,
    /// Current watermark, if any.
    pub watermark: Option<i64>,
    /// Time since start.
    pub elapsed: Duration,
    /// Checkpoints taken, the last one, and the one the run resumed from.
    pub checkpoints: CheckpointStats,
}

impl Progress {
    /// Input records per second since the start.
    pub fn rate(&self) -> f64 {
        self.records_in as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Reading and processing.
    Running,
    /// A stop was asked for; the stages are winding down.
    Stopping,
    /// The input ended and every result was written.
    Finished,
    /// Stopped on request (windows still open were not emitted).
    Stopped,
    /// A stage failed; the message says why.
    Failed(String),
}

impl JobStatus {
    /// Whether the job has ended (finished, stopped or failed).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Finished | Self::Stopped | Self::Failed(_))
    }

    /// A lower-case name: running, stopping, finished, stopped, failed.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Finished => "finished",
            Self::Stopped => "stopped",
            Self::Failed(_) => "failed",
        }
    }
}

/// What a [`Subscription`] receives.
#[derive(Debug, Clone)]
pub enum JobEvent {
    /// Rows the sink wrote.
    Rows(RecordBatch),
    /// Progress, about twice a second while the job runs.
    Progress(Progress),
    /// The status changed; the last event of a subscription is a terminal one.
    Status(JobStatus),
}
