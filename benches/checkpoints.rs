//! What durable checkpoints cost and how fast a query comes back.
//!
//! Run: `cargo bench --bench checkpoints`.
//!
//! * `overhead`: 60,000,000 bids generated in memory (about 4 s a run)
//!   through a 10 s tumbling COUNT/SUM per bidder (~100,000 groups per
//!   window, two windows open) on the query runtime (source, 2 workers,
//!   sink), without checkpoints (the baseline, same run) and with a durable
//!   checkpoint every 1 s and every 100 ms into a local directory. The ratio
//!   is the throughput cost.
//! * `overhead_pairs`: the 1 s case against the baseline in alternating
//!   pairs (which runs first alternates too), 8 pairs by default
//!   (`EDDY_BENCH_PAIRS`): each pair's ratio sees the same machine state,
//!   so the median ratio is the overhead with the machine's drift (over a
//!   criterion group's minutes) taken out. Printed, min / median / max.
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

const ROWS: usize = 60_000_000;
const BATCH: usize = 8192;

/// Batches from memory, then idle (the query runs until stopped); resumes
/// at a batch number, as a checkpointed source must.
struct Replay {
    batches: Arc<Vec<RecordBatch>>,
    next: usize,
}

impl Source for Replay {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        let Some(b) = self.batches.get(self.next) else {
            std::thread::sleep(Duration::from_millis(1));
            return Ok(SourceEvent::Idle);
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

/// `ROWS` bids made batch by batch (the same for every run), resumable.
struct Generated {
    next: usize,
}

impl Source for Generated {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        if self.next >= ROWS {
            return Ok(SourceEvent::End);
        }
        let n = BATCH.min(ROWS - self.next);
        let b = batch(self.next, n, |i| {
            (i as i64).wrapping_mul(2_654_435_761).rem_euclid(100_000)
        });
        self.next += n;
        Ok(SourceEvent::Batch(b))
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

/// Rows `start..start + n`: key `key(i)`, 10 rows per ms of event time.
fn batch(start: usize, n: usize, key: impl Fn(usize) -> i64) -> RecordBatch {
    let keys: Int64Array = (start..start + n).map(key).collect();
    let price: Int64Array = (start..start + n).map(|i| (i % 997) as i64).collect();
    let ts = TimestampMillisecondArray::from_iter_values(
        (start..start + n).map(|i| 1_767_225_600_000 + (i as i64) / 10),
    );
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(keys), Arc::new(price), Arc::new(ts)],
    )
    .expect("valid batch")
}

/// `rows` rows in batches, key `key(i)`.
fn batches(rows: usize, key: impl Fn(usize) -> i64 + Copy) -> Vec<RecordBatch> {
    (0..rows)
        .step_by(BATCH)
        .map(|start| batch(start, BATCH.min(rows - start), key))
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

fn spec(select: &str, source: Box<dyn Source>, checkpoint: Option<CheckpointConfig>) -> JobSpec {
    let options = RunOptions {
        partitions: 2,
        batch_size: BATCH,
        checkpoint,
        ..RunOptions::default()
    };
    JobSpec::new("bench", plan(select))
        .options(options)
        .source(source)
        .sink(Box::new(CountSink::default()))
}

fn replay(batches: &Arc<Vec<RecordBatch>>) -> Box<dyn Source> {
    Box::new(Replay {
        batches: batches.clone(),
        next: 0,
    })
}

fn config(dir: &std::path::Path, interval: Duration) -> CheckpointConfig {
    CheckpointConfig {
        interval,
        from_scratch: true,
        ..CheckpointConfig::new(dir.to_str().expect("utf-8 path"))
    }
}

fn overhead(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("checkpoint_overhead_60m");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    let cases: [(&str, Option<Duration>); 4] = [
        ("baseline_no_checkpoints", None),
        ("every_1s", Some(Duration::from_secs(1))),
        ("every_100ms", Some(Duration::from_millis(100))),
        // the baseline again: the machine's drift over the run
        ("baseline_no_checkpoints_again", None),
    ];
    let run = |interval: Option<Duration>| {
        let chk = interval.map(|i| config(dir.path(), i));
        let job = JobManager::new()
            .submit(spec(PER_BIDDER, Box::new(Generated { next: 0 }), chk))
            .expect("starts");
        let stats = job.wait().expect("runs");
        (stats.records_out, stats.checkpoints.completed)
    };
    let (rows, _) = run(None);
    for (name, interval) in cases {
        // the same rows come out, and checkpoints were taken
        let (out, taken) = run(interval);
        assert_eq!(out, rows, "{name}");
        if let Some(i) = interval {
            eprintln!("{name}: {taken} checkpoints in a run ({i:?} apart)");
        }
        g.bench_function(name, |b| b.iter(|| run(interval).0));
    }
    g.finish();
}

/// Whether criterion's name filter (the first argument that is not a
/// flag), if any, selects `name`.
fn selected(name: &str) -> bool {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    args.next().is_none_or(|filter| name.contains(&filter))
}

fn overhead_pairs(_: &mut Criterion) {
    if !selected("checkpoint_overhead_pairs") {
        return;
    }
    let pairs: usize = std::env::var("EDDY_BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().expect("temp dir");
    // (wall seconds, CPU seconds of every thread, checkpoints taken)
    let time = |interval: Option<Duration>| {
        let chk = interval.map(|i| config(dir.path(), i));
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let job = JobManager::new()
            .submit(spec(PER_BIDDER, Box::new(Generated { next: 0 }), chk))
            .expect("starts");
        let stats = job.wait().expect("runs");
        let wall = started.elapsed().as_secs_f64();
        (wall, cpu_seconds() - cpu, stats.checkpoints.completed)
    };
    let every = Some(Duration::from_secs(1));
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for i in 0..pairs {
        let (base, with) = if i % 2 == 0 {
            let b = time(None);
            (b, time(every))
        } else {
            let w = time(every);
            (time(None), w)
        };
        wall.push(with.0 / base.0);
        cpu.push(with.1 / base.1);
        eprintln!(
            "pair {i}: baseline {:.2} s ({:.2} s CPU), every 1 s {:.2} s ({:.2} s CPU, {} checkpoints)",
            base.0, base.1, with.0, with.1, with.2
        );
    }
    for (what, mut ratios) in [("wall", wall), ("cpu", cpu)] {
        ratios.sort_by(f64::total_cmp);
        println!(
            "checkpoint_overhead_pairs/every_1s_over_baseline_{what}: median {:.3} (min {:.3}, max {:.3}) over {pairs} pairs",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
}

/// CPU time of this process so far, all threads (user + system, from
/// `/proc/self/stat`, in 10 ms ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the command (which may hold spaces): state is field 3
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

fn recovery(c: &mut Criterion) {
    let input = Arc::new(batches(1_000_000, |i| i as i64));
    let dir = tempfile::tempdir().expect("temp dir");
    // one run holding the million keys, stopped after a checkpoint with them
    let jobs = JobManager::new();
    let job = jobs
        .submit(spec(
            MILLION_KEYS,
            replay(&input),
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
                    .submit(spec(MILLION_KEYS, replay(&input), Some(resume)))
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

criterion_group!(benches, overhead, overhead_pairs, recovery);
criterion_main!(benches);
