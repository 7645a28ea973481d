//! What durable checkpoints cost and how fast a query comes back.
//!
//! Run: `cargo bench --bench checkpoints`.
//!
//! * `overhead`: 3,000,000 bids from memory through a 10 s tumbling
//!   COUNT/SUM per bidder (~60,000 groups per window) on the query runtime
//!   (source, 2 workers, sink), without checkpoints (the baseline, same run)
//!   and with a durable checkpoint every 1 s and every 100 ms into a local
//!   directory. The ratio is the throughput cost.
//! * `recovery`: a query holding 1,000,000 keys of window state (one day
//!   window, 1M distinct keys) was checkpointed; each iteration starts it
//!   again from that checkpoint: opening the store, reading the manifest and
//!   the Arrow files, restoring the operators and positioning the source —
//!   what a restart after `kill -9` does before reading on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eddy::connectors::{Source, SourceEvent};
use eddy::{CheckpointConfig, ConnectorError, JobManager, JobSpec, RunOptions};
use eddy_suite::bench::CountSink;

const ROWS: usize = 3_000_000;
const BATCH: usize = 8192;

/// Batches from memory, then idle (`endless`) or the end; resumes at a
/// batch number, as a checkpointed source must.
struct Replay {
    batches: Arc<Vec<RecordBatch>>,
    next: usize,
    endless: bool,
}

impl Source for Replay {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        let Some(b) = self.batches.get(self.next) else {
            return Ok(if self.endless {
                std::thread::sleep(Duration::from_millis(1));
                SourceEvent::Idle
            } else {
                SourceEvent::End
            });
        };
        self.next += 1;
        Ok(SourceEvent::Batch(b.clone()))
    }

    fn resume_state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "next": self.next }))
    }

    fn resume(&mut self, state: &serde_json::Value) -> Result<(), ConnectorError> {
        self.next = state["next"].as_u64().unwrap_or(0) as usize;
        Ok(())
    }
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("price", DataType::Int64, true),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
    ]))
}

/// `rows` rows, key `key(i)`, 10 rows per ms of event time from `t0`.
fn batches(rows: usize, key: impl Fn(usize) -> i64) -> Vec<RecordBatch> {
    (0..rows)
        .step_by(BATCH)
        .map(|start| {
            let n = BATCH.min(rows - start);
            let keys: Int64Array = (start..start + n).map(&key).collect();
            let price: Int64Array = (start..start + n).map(|i| (i % 997) as i64).collect();
            let ts = TimestampMillisecondArray::from_iter_values(
                (start..start + n).map(|i| 1_767_225_600_000 + (i as i64) / 10),
            );
            RecordBatch::try_new(
                schema(),
                vec![Arc::new(keys), Arc::new(price), Arc::new(ts)],
            )
            .expect("valid batch")
        })
        .collect()
}

fn plan(select: &str) -> eddy::PhysicalPlan {
    let sql = format!(
        "CREATE STREAM bids (k BIGINT, price BIGINT, date_time TIMESTAMP,
           WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
         WITH (connector = 'file', path = 'in-memory.jsonl');
         {select}"
    );
    eddy::plan_script(&sql).expect("plans").queries.remove(0)
}

const PER_BIDDER: &str = "SELECT k, window_start, COUNT(*) AS n, SUM(price) AS total
    FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) GROUP BY k, window_start, window_end";

const MILLION_KEYS: &str = "SELECT k, window_start, COUNT(*) AS n, SUM(price) AS total
    FROM TUMBLE(bids, date_time, INTERVAL '1' DAY) GROUP BY k, window_start, window_end";

fn spec(
    select: &str,
    batches: &Arc<Vec<RecordBatch>>,
    endless: bool,
    checkpoint: Option<CheckpointConfig>,
) -> JobSpec {
    let options = RunOptions {
        partitions: 2,
        batch_size: BATCH,
        checkpoint,
        ..RunOptions::default()
    };
    JobSpec::new("bench", plan(select))
        .options(options)
        .source(Box::new(Replay {
            batches: batches.clone(),
            next: 0,
            endless,
        }))
        .sink(Box::new(CountSink::default()))
}

fn config(dir: &std::path::Path, interval: Duration) -> CheckpointConfig {
    CheckpointConfig {
        interval,
        from_scratch: true,
        ..CheckpointConfig::new(dir.to_str().expect("utf-8 path"))
    }
}

fn overhead(c: &mut Criterion) {
    // ~100,000 bidders: each 10 s window (100,000 rows) holds ~60,000 groups
    let input = Arc::new(batches(ROWS, |i| {
        (i as i64).wrapping_mul(2_654_435_761) % 100_000
    }));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("checkpoint_overhead_3m");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    let cases: [(&str, Option<Duration>); 3] = [
        ("baseline_no_checkpoints", None),
        ("every_1s", Some(Duration::from_secs(1))),
        ("every_100ms", Some(Duration::from_millis(100))),
    ];
    for (name, interval) in cases {
        g.bench_function(name, |b| {
            b.iter(|| {
                let chk = interval.map(|i| config(dir.path(), i));
                let job = JobManager::new()
                    .submit(spec(PER_BIDDER, &input, false, chk))
                    .expect("starts");
                job.wait().expect("runs").records_out
            })
        });
    }
    g.finish();
}

fn recovery(c: &mut Criterion) {
    let input = Arc::new(batches(1_000_000, |i| i as i64));
    let dir = tempfile::tempdir().expect("temp dir");
    // one run holding the million keys, stopped after a checkpoint with them
    let jobs = JobManager::new();
    let job = jobs
        .submit(spec(
            MILLION_KEYS,
            &input,
            true,
            Some(config(dir.path(), Duration::from_millis(500))),
        ))
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let wait = |done: &dyn Fn() -> bool| {
        while !done() {
            assert!(Instant::now() < deadline, "no checkpoint of the state");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // every row reached the workers; then two checkpoints later all are in one
    wait(&|| job.metrics().total(|m| &m.rows_in) >= 1_000_000);
    let before = job.progress().checkpoints.completed;
    wait(&|| job.progress().checkpoints.completed >= before + 2);
    job.stop();
    job.wait().expect("stops");
    let mut g = c.benchmark_group("recovery_1m_keys");
    g.sample_size(10);
    g.bench_function("restore_and_start", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let resume = CheckpointConfig {
                    from_scratch: false,
                    ..config(dir.path(), Duration::from_secs(3600))
                };
                let started = Instant::now();
                let job = jobs
                    .submit(spec(MILLION_KEYS, &input, true, Some(resume)))
                    .expect("resumes");
                total += started.elapsed();
                let (id, took) = job.progress().checkpoints.restored.expect("restored");
                assert!(id > 0 && took <= total);
                job.stop();
                job.wait().expect("stops");
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, overhead, recovery);
criterion_main!(benches);
