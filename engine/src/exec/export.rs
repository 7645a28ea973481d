//! Prometheus text exposition of running queries' metrics: rows in and out
//! per query and per operator, batch latency, watermark and its lag behind
//! the wall clock, late and malformed rows, open windows and state size,
//! queue depths and time blocked on a full queue (backpressure).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::connectors::SourceCounters;
use crate::exec::metrics::QueryMetrics;

type Labels = Vec<(String, String)>;

fn new_latency_histogram() -> Histogram {
    // 10 µs .. ~2.6 s
    Histogram::new(exponential_buckets(1e-5, 4.0, 10))
}

/// One query's live counters, as registered with an [`Exporter`].
struct Registered {
    label: String,
    metrics: Arc<QueryMetrics>,
    source: Arc<SourceCounters>,
}

/// One task a process runs of a scaled-out query.
#[derive(Clone)]
pub struct ShareTask {
    /// The task's name (`<query>.s1.<topic>.p<p>`, `<query>.s2.r<r>`).
    pub name: String,
    /// Its stage (1 or 2).
    pub stage: u8,
    /// Its job's counters.
    pub metrics: Arc<QueryMetrics>,
    pub source: Arc<SourceCounters>,
}

/// What a process runs of a query shared by several (`eddy run
/// --instance-id`), as the exporter reads it.
#[derive(Clone, Default)]
pub struct ShareStatus {
    /// The query's name, the same on every process.
    pub query: String,
    /// This process's instance id.
    pub instance: String,
    /// The tasks it runs now.
    pub tasks: Vec<ShareTask>,
    /// Assignments that followed a revocation, and the last one's duration.
    pub rebalances: u64,
    pub last_rebalance: Option<std::time::Duration>,
}

/// A process's share of a scaled-out query, read at each scrape.
pub trait Share: Send + Sync {
    fn status(&self) -> ShareStatus;
}

/// Collects the metrics of every query of a process and renders them.
pub struct Exporter {
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    queries: Mutex<Vec<Registered>>,
    shares: Mutex<Vec<Arc<dyn Share>>>,
}

impl Default for Exporter {
    fn default() -> Self {
        Self {
            latency: Family::new_with_constructor(new_latency_histogram as fn() -> Histogram),
            queries: Mutex::new(Vec::new()),
            shares: Mutex::new(Vec::new()),
        }
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter")
    }
}

impl Exporter {
    /// The histogram a query labelled `query` records its batch latency in
    /// (pass it in [`crate::RunOptions::batch_latency`]).
    pub fn batch_latency(&self, query: &str) -> Histogram {
        self.latency
            .get_or_create(&vec![("query".to_string(), query.to_string())])
            .clone()
    }

    /// Removes the counters registered under `query` (a query restarted
    /// registers fresh ones).
    pub fn unregister(&self, query: &str) {
        if let Ok(mut q) = self.queries.lock() {
            q.retain(|r| r.label != query);
        }
    }

    /// Adds a running query's counters under the label `query`.
    pub fn register(&self, query: &str, metrics: Arc<QueryMetrics>, source: Arc<SourceCounters>) {
        if let Ok(mut q) = self.queries.lock() {
            q.push(Registered {
                label: query.to_string(),
                metrics,
                source,
            });
        }
    }

    /// Adds a process's share of a scaled-out query: its tasks' counters
    /// (each labelled with the task's name) and which tasks it owns, its
    /// rebalances and the last one's duration.
    pub fn register_share(&self, share: Arc<dyn Share>) {
        if let Ok(mut s) = self.shares.lock() {
            s.push(share);
        }
    }

    /// Removes the share of query `query` (it stopped, or starts again).
    pub fn unregister_share(&self, query: &str) {
        if let Ok(mut s) = self.shares.lock() {
            s.retain(|share| share.status().query != query);
        }
    }

    /// The metrics in Prometheus text format, with `# EOF`.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("eddy");
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let f = Family::<Labels, Counter>::default();
            r.register(name, help, f.clone());
            f
        };
        let gauge = |r: &mut Registry, name: &str, help: &str| {
            let f = Family::<Labels, Gauge<i64, AtomicI64>>::default();
            r.register(name, help, f.clone());
            f
        };
        let rows_in = counter(&mut registry, "source_rows", "Rows read from the source");
        let malformed = counter(
            &mut registry,
            "malformed_records",
            "Malformed input records skipped",
        );
        let rows_out = counter(&mut registry, "sink_rows", "Rows written to the sink");
        let late = counter(
            &mut registry,
            "late_rows",
            "Rows too late for any open window (dropped or dead-lettered)",
        );
        let accepted = counter(
            &mut registry,
            "late_rows_accepted",
            "Rows behind the watermark but within the allowed lateness",
        );
        let dead = counter(
            &mut registry,
            "dead_letter_rows",
            "Rows written to the dead-letter sink",
        );
        let part_rows = counter(
            &mut registry,
            "partition_rows",
            "Rows routed to a partition worker",
        );
        let part_state = gauge(
            &mut registry,
            "partition_state_bytes",
            "Approximate bytes of state held by a partition worker",
        );
        let op_in = counter(&mut registry, "operator_rows_in", "Rows into an operator");
        let op_out = counter(
            &mut registry,
            "operator_rows_out",
            "Rows out of an operator",
        );
        let blocked = counter(
            &mut registry,
            "source_blocked_microseconds",
            "Time the source waited on a full queue",
        );
        let watermark = gauge(
            &mut registry,
            "watermark_milliseconds",
            "Current watermark, epoch ms",
        );
        let lag = gauge(
            &mut registry,
            "watermark_lag_milliseconds",
            "Wall clock minus watermark, ms",
        );
        let windows = gauge(
            &mut registry,
            "open_windows",
            "Windows (panes, sessions) holding state",
        );
        let state = gauge(
            &mut registry,
            "state_bytes",
            "Approximate bytes of operator state",
        );
        let queue = gauge(
            &mut registry,
            "queue_depth",
            "Batches waiting between two stages",
        );
        let checkpoints = CheckpointFamilies::new(&mut registry);
        registry.register(
            "batch_latency_seconds",
            "Time from an input batch to its outputs",
            self.latency.clone(),
        );
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut queries = self
            .queries
            .lock()
            .map(|q| {
                q.iter()
                    .map(|r| (r.label.clone(), r.metrics.clone(), r.source.clone()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let shares = self.shares.lock().map(|s| s.clone()).unwrap_or_default();
        let share_families = ShareFamilies::new(&mut registry);
        for share in shares {
            let status = share.status();
            share_families.record(&status);
            queries.extend(
                status
                    .tasks
                    .into_iter()
                    .map(|t| (t.name, t.metrics, t.source)),
            );
        }
        for (label, m, s) in queries {
            let l = vec![("query".to_string(), label.clone())];
            let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
            rows_in.get_or_create(&l).inc_by(read(&s.records));
            malformed.get_or_create(&l).inc_by(read(&s.malformed));
            rows_out.get_or_create(&l).inc_by(read(&m.rows_out));
            late.get_or_create(&l).inc_by(m.total(|m| &m.late_rows));
            accepted
                .get_or_create(&l)
                .inc_by(m.total(|m| &m.late_accepted));
            dead.get_or_create(&l).inc_by(read(&m.dead_letters));
            blocked.get_or_create(&l).inc_by(read(&m.source_blocked_us));
            if let Some(w) = m.watermark() {
                watermark.get_or_create(&l).set(w);
                lag.get_or_create(&l).set(now_ms.saturating_sub(w));
            }
            windows
                .get_or_create(&l)
                .set(m.total(|m| &m.open_windows) as i64);
            state
                .get_or_create(&l)
                .set(m.total(|m| &m.state_bytes) as i64);
            let mut queues = vec![
                ("source".to_string(), &m.source_queue_depth),
                ("sink".to_string(), &m.sink_queue_depth),
            ];
            for (p, pm) in m.partitions.iter().enumerate() {
                queues.push((format!("partition_{p}"), &pm.source_queue_depth));
                let lp = vec![
                    ("query".to_string(), label.clone()),
                    ("partition".to_string(), p.to_string()),
                ];
                part_state
                    .get_or_create(&lp)
                    .set(read(&pm.state_bytes) as i64);
                part_rows.get_or_create(&lp).inc_by(read(&pm.rows_in));
            }
            for (stage, depth) in queues {
                let ls = vec![
                    ("query".to_string(), label.clone()),
                    ("queue".to_string(), stage),
                ];
                queue.get_or_create(&ls).set(read(depth) as i64);
            }
            checkpoints.record(&l, &m.checkpoint_stats());
            let ops = m.operators.lock().map(|o| o.clone()).unwrap_or_default();
            for op in ops {
                let lo = vec![
                    ("query".to_string(), label.clone()),
                    ("operator".to_string(), op.label.clone()),
                ];
                op_in.get_or_create(&lo).inc_by(read(&op.rows_in));
                op_out.get_or_create(&lo).inc_by(read(&op.rows_out));
            }
        }
        let mut out = String::new();
        if encode(&mut out, &registry).is_err() {
            let _ = writeln!(out, "# error: the metrics could not be encoded");
        }
        out
    }
}

type GaugeFamily = Family<Labels, Gauge<i64, AtomicI64>>;

/// A gauge family registered in `r`.
fn gauge_family(r: &mut Registry, name: &str, help: &str) -> GaugeFamily {
    let f = GaugeFamily::default();
    r.register(name, help, f.clone());
    f
}

/// Which tasks an instance of a scaled-out query runs, and its rebalances.
struct ShareFamilies {
    tasks: GaugeFamily,
    task: GaugeFamily,
    rebalances: Family<Labels, Counter>,
    last_rebalance_ms: GaugeFamily,
}

impl ShareFamilies {
    fn new(r: &mut Registry) -> Self {
        let mut gauge = |name: &str, help: &str| gauge_family(r, name, help);
        let families = Self {
            tasks: gauge("instance_tasks", "Tasks of a stage this instance runs now"),
            task: gauge(
                "instance_task",
                "1 for each task this instance runs now (label task)",
            ),
            last_rebalance_ms: gauge(
                "instance_last_rebalance_milliseconds",
                "Time the last rebalance took, revocation to new assignment",
            ),
            rebalances: Family::default(),
        };
        r.register(
            "instance_rebalances",
            "Rebalances this instance went through",
            families.rebalances.clone(),
        );
        families
    }

    fn record(&self, s: &ShareStatus) {
        let l = vec![
            ("query".to_string(), s.query.clone()),
            ("instance".to_string(), s.instance.clone()),
        ];
        for stage in [1u8, 2] {
            let mut ls = l.clone();
            ls.push(("stage".to_string(), stage.to_string()));
            let n = s.tasks.iter().filter(|t| t.stage == stage).count();
            self.tasks.get_or_create(&ls).set(n as i64);
        }
        for t in &s.tasks {
            let mut lt = l.clone();
            lt.push(("task".to_string(), t.name.clone()));
            self.task.get_or_create(&lt).set(1);
        }
        self.rebalances.get_or_create(&l).inc_by(s.rebalances);
        if let Some(d) = s.last_rebalance {
            self.last_rebalance_ms
                .get_or_create(&l)
                .set(d.as_millis() as i64);
        }
    }
}

/// The checkpoint metrics of the queries that take checkpoints.
struct CheckpointFamilies {
    completed: Family<Labels, Counter>,
    last_id: GaugeFamily,
    last_bytes: GaugeFamily,
    last_ms: GaugeFamily,
    age_ms: GaugeFamily,
    restored_id: GaugeFamily,
    recovery_ms: GaugeFamily,
}

impl CheckpointFamilies {
    fn new(r: &mut Registry) -> Self {
        let mut gauge = |name: &str, help: &str| gauge_family(r, name, help);
        let families = Self {
            completed: Family::default(),
            last_id: gauge("checkpoint_last_id", "Id of the last durable checkpoint"),
            last_bytes: gauge(
                "checkpoint_last_bytes",
                "Bytes of the last checkpoint's snapshot files",
            ),
            last_ms: gauge(
                "checkpoint_last_duration_milliseconds",
                "Time the last checkpoint took, from its first part to its manifest",
            ),
            age_ms: gauge(
                "checkpoint_age_milliseconds",
                "Time since the last checkpoint completed",
            ),
            restored_id: gauge(
                "checkpoint_restored_id",
                "Id of the checkpoint this run resumed from",
            ),
            recovery_ms: gauge(
                "recovery_milliseconds",
                "Time restoring the checkpoint took at start",
            ),
        };
        r.register(
            "checkpoints",
            "Checkpoints made durable by this run",
            families.completed.clone(),
        );
        families
    }

    fn record(&self, l: &Labels, s: &crate::exec::metrics::CheckpointStats) {
        if let Some(last) = &s.last {
            self.completed.get_or_create(l).inc_by(s.completed);
            self.last_id.get_or_create(l).set(last.id as i64);
            self.last_bytes.get_or_create(l).set(last.bytes as i64);
            self.last_ms
                .get_or_create(l)
                .set(last.took.as_millis() as i64);
            self.age_ms
                .get_or_create(l)
                .set(last.at.elapsed().as_millis() as i64);
        }
        if let Some((id, took)) = s.restored {
            self.restored_id.get_or_create(l).set(id as i64);
            self.recovery_ms
                .get_or_create(l)
                .set(took.as_millis() as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_family_per_metric_with_query_labels() {
        let e = Exporter::default();
        for q in ["1", "2"] {
            let m = Arc::new(QueryMetrics::default());
            m.rows_out.store(5, Ordering::Relaxed);
            m.watermark.store(1_000, Ordering::Relaxed);
            if q == "2" {
                m.checkpoints_restored(7, std::time::Duration::from_millis(40));
                m.checkpoint_completed(&crate::checkpoint::writer::Completed {
                    id: 8,
                    bytes: 4096,
                    files: 3,
                    took: std::time::Duration::from_millis(12),
                    sources: Default::default(),
                });
            }
            e.register(q, m, Arc::new(SourceCounters::default()));
            e.batch_latency(q).observe(0.002);
        }
        let text = e.render();
        assert_eq!(
            text.matches("# TYPE eddy_sink_rows counter").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("eddy_sink_rows_total{query=\"1\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("eddy_sink_rows_total{query=\"2\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("eddy_watermark_milliseconds{query=\"2\"} 1000"),
            "{text}"
        );
        assert!(
            text.contains("eddy_batch_latency_seconds_count{query=\"1\"} 1"),
            "{text}"
        );
        for line in [
            "eddy_checkpoints_total{query=\"2\"} 1",
            "eddy_checkpoint_last_id{query=\"2\"} 8",
            "eddy_checkpoint_last_bytes{query=\"2\"} 4096",
            "eddy_checkpoint_last_duration_milliseconds{query=\"2\"} 12",
            "eddy_checkpoint_restored_id{query=\"2\"} 7",
            "eddy_recovery_milliseconds{query=\"2\"} 40",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!text.contains("eddy_checkpoint_last_id{query=\"1\"}"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
