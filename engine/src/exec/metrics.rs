//! Counters a running query updates and the progress line and stats read.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Rows into and out of one operator.
#[derive(Debug, Default)]
pub struct OperatorCounters {
    /// The operator's position in the pipeline and name, e.g. `2_filter`.
    pub label: String,
    /// Rows received.
    pub rows_in: AtomicU64,
    /// Rows emitted.
    pub rows_out: AtomicU64,
    /// Nanoseconds spent in the operator (summed over partition workers).
    pub busy_ns: AtomicU64,
}

impl OperatorCounters {
    /// The plan position in the label (`2_filter` → 2): the operator's
    /// node id in the plan graph (the source is 0).
    pub fn position(&self) -> Option<usize> {
        self.label.split('_').next()?.parse().ok()
    }
}

/// A query's checkpoints so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckpointStats {
    /// Checkpoints made durable by this run.
    pub completed: u64,
    /// The last one: id, bytes, files, how long it took, when it completed.
    pub last: Option<LastCheckpoint>,
    /// The checkpoint this run resumed from, and how long restoring it took
    /// (from opening the store until the sources were positioned).
    pub restored: Option<(u64, std::time::Duration)>,
}

/// The last checkpoint a query made durable.
#[derive(Debug, Clone, PartialEq)]
pub struct LastCheckpoint {
    /// Its id.
    pub id: u64,
    /// Bytes of snapshot files.
    pub bytes: u64,
    /// Snapshot files.
    pub files: usize,
    /// From its barrier's first state to its manifest.
    pub took: std::time::Duration,
    /// When it completed.
    pub at: std::time::Instant,
}

/// Live counters of one query. All updates are relaxed atomics.
#[derive(Debug)]
pub struct QueryMetrics {
    /// Rows handed to the sink.
    pub rows_out: AtomicU64,
    /// Rows received (by a partition worker).
    pub rows_in: AtomicU64,
    /// Rows too late for any open window (past the allowed lateness):
    /// dropped, or sent to the dead-letter sink.
    pub late_rows: AtomicU64,
    /// Rows behind the watermark but within the allowed lateness: applied.
    pub late_accepted: AtomicU64,
    /// Rows written to the dead-letter sink.
    pub dead_letters: AtomicU64,
    /// Rows dropped because their event time was NULL.
    pub null_time_rows: AtomicU64,
    /// Current watermark (ms); `i64::MIN` before the first.
    pub watermark: AtomicI64,
    /// The source has had no input for its `idle_timeout`: its watermark
    /// moves on with the wall clock.
    pub source_idle: AtomicBool,
    /// Largest event time seen (ms); `i64::MIN` before the first.
    pub event_time_max: AtomicI64,
    /// Windows currently open (holding state).
    pub open_windows: AtomicU64,
    /// Approximate bytes of operator state held.
    pub state_bytes: AtomicU64,
    /// Batches waiting between the source and the worker.
    pub source_queue_depth: AtomicU64,
    /// Batches waiting between the worker and the sink.
    pub sink_queue_depth: AtomicU64,
    /// Microseconds the source spent blocked on a full queue (backpressure).
    pub source_blocked_us: AtomicU64,
    /// Nanoseconds the sink spent writing.
    pub sink_busy_ns: AtomicU64,
    /// The query's checkpoints, when it takes them.
    pub checkpoints: Mutex<CheckpointStats>,
    /// Per-operator row counters, in pipeline order.
    pub operators: Mutex<Vec<Arc<OperatorCounters>>>,
    /// With several partition workers, each one's own counters and gauges
    /// (state, windows, queue depth, watermark); empty with one worker.
    pub partitions: Vec<Arc<QueryMetrics>>,
}

impl Default for QueryMetrics {
    fn default() -> Self {
        Self {
            rows_out: AtomicU64::new(0),
            rows_in: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            late_accepted: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            null_time_rows: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            source_idle: AtomicBool::new(false),
            event_time_max: AtomicI64::new(i64::MIN),
            open_windows: AtomicU64::new(0),
            state_bytes: AtomicU64::new(0),
            source_queue_depth: AtomicU64::new(0),
            sink_queue_depth: AtomicU64::new(0),
            source_blocked_us: AtomicU64::new(0),
            sink_busy_ns: AtomicU64::new(0),
            checkpoints: Mutex::new(CheckpointStats::default()),
            operators: Mutex::new(Vec::new()),
            partitions: Vec::new(),
        }
    }
}

impl QueryMetrics {
    /// Metrics for a query run by `n` partition workers.
    pub fn with_partitions(n: usize) -> Self {
        let partitions = if n > 1 {
            (0..n).map(|_| Arc::new(QueryMetrics::default())).collect()
        } else {
            Vec::new()
        };
        Self {
            partitions,
            ..Self::default()
        }
    }

    /// The metrics partition `p`'s operators update (the query's own with one worker).
    pub fn partition(this: &Arc<Self>, p: usize) -> Arc<Self> {
        this.partitions
            .get(p)
            .cloned()
            .unwrap_or_else(|| this.clone())
    }

    /// A counter or gauge summed over the query and its partitions.
    pub fn total(&self, field: impl Fn(&QueryMetrics) -> &AtomicU64) -> u64 {
        field(self).load(Ordering::Relaxed)
            + self
                .partitions
                .iter()
                .map(|p| field(p).load(Ordering::Relaxed))
                .sum::<u64>()
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The watermark, if one has been seen.
    pub fn watermark(&self) -> Option<i64> {
        match self.watermark.load(Ordering::Relaxed) {
            i64::MIN => None,
            w => Some(w),
        }
    }

    /// The largest event time seen, if any.
    pub fn event_time_max(&self) -> Option<i64> {
        match self.event_time_max.load(Ordering::Relaxed) {
            i64::MIN => None,
            t => Some(t),
        }
    }

    /// Records a checkpoint made durable.
    pub fn checkpoint_completed(&self, c: &crate::checkpoint::writer::Completed) {
        let mut s = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        s.completed += 1;
        s.last = Some(LastCheckpoint {
            id: c.id,
            bytes: c.bytes,
            files: c.files,
            took: c.took,
            at: std::time::Instant::now(),
        });
    }

    /// Records that the run resumed from checkpoint `id`; restoring took `took`.
    pub fn checkpoints_restored(&self, id: u64, took: std::time::Duration) {
        let mut s = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        s.restored = Some((id, took));
    }

    /// The checkpoints so far.
    pub fn checkpoint_stats(&self) -> CheckpointStats {
        self.checkpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A gauge's largest value over the query and its partitions.
    pub fn max(&self, field: impl Fn(&QueryMetrics) -> &AtomicU64) -> u64 {
        self.partitions
            .iter()
            .map(|p| field(p).load(Ordering::Relaxed))
            .fold(field(self).load(Ordering::Relaxed), u64::max)
    }
}
