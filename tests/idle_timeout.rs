//! `idle_timeout`: when a followed source goes silent, event time advances
//! with the wall clock after the timeout, so the last window still closes.
//! Without it the watermark waits for more data and the window stays open.

use std::time::{Duration, Instant};

use eddy::{CollectSink, JobHandle, JobManager, JobSpec, RunOptions};

/// Stops the query even when an assertion fails.
struct Stopper(JobHandle);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.stop();
        let _ = self.0.wait();
    }
}

/// Starts a COUNT per 1 s window over a followed file of rows at 0.5 s,
/// 1.5 s, 2.5 s and 3.5 s; returns the sink and the running query.
fn start(dir: &std::path::Path, idle: &str) -> (CollectSink, Stopper) {
    let path = dir.join("in.jsonl");
    let rows: String = [500, 1500, 2500, 3500]
        .iter()
        .map(|ms| format!("{{\"k\":1,\"t\":{}}}\n", 1_767_225_600_000i64 + ms))
        .collect();
    std::fs::write(&path, rows).expect("write input");
    let sql = format!(
        "CREATE STREAM s (k BIGINT, t TIMESTAMP, WATERMARK FOR t AS t)
         WITH (connector = 'file', path = '{}', follow = 'true'{idle});
         SELECT window_start, COUNT(*) AS n FROM TUMBLE(s, t, INTERVAL '1' SECOND)
         GROUP BY window_start, window_end",
        path.display()
    );
    let script = eddy::plan_script(&sql).expect("plans");
    let sink = CollectSink::default();
    let spec = JobSpec::new("idle", script.queries[0].clone())
        .sink(Box::new(sink.clone()))
        .options(RunOptions {
            batch_size: 1,
            ..RunOptions::default()
        });
    let q = JobManager::new().submit(spec).expect("starts");
    (sink, Stopper(q))
}

fn rows(sink: &CollectSink) -> usize {
    sink.batches().iter().map(|b| b.num_rows()).sum()
}

#[test]
fn a_silent_source_closes_its_last_window_after_the_idle_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sink, _q) = start(dir.path(), ", idle_timeout = '200 ms'");
    let deadline = Instant::now() + Duration::from_secs(10);
    // [0,1), [1,2), [2,3) close as rows arrive; [3,4) only by idleness
    while rows(&sink) < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(rows(&sink), 4, "the last window was not closed by idleness");
}

#[test]
fn without_idle_timeout_the_last_window_waits_for_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sink, _q) = start(dir.path(), "");
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(&sink) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rows(&sink), 3, "only the windows the data closed");
}
