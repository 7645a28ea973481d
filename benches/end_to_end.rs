//! `eddy run` end to end: a 1,000,000-row JSON-lines file through a tumbling
//! 10 s COUNT/SUM/MIN/MAX/AVG per auction into a JSON-lines output file, on
//! the same threads and library calls the CLI uses (source, worker, sink).
//!
//! Run: `cargo bench --bench end_to_end`. Baseline in the same run: reading
//! and decoding the file with a query that keeps no rows, so the ratio shows
//! what the window aggregation adds to decoding. Each at `--partitions 1`
//! (one decoding thread, one worker) and 2 (two of each). The same baseline
//! with `'json.lenient' = 'true'` shows what the strict JSON type rules cost,
//! and over the same rows as CSV (`format = 'csv'`) what CSV decoding costs
//! beside JSON.

use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eddy::RunOptions;

const ROWS: usize = 1_000_000;

const TUMBLE: &str = "SELECT auction, window_start, window_end, COUNT(*) AS n, SUM(price) AS s,
        MIN(price) AS lo, MAX(price) AS hi, AVG(price) AS mean
    FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
    GROUP BY auction, window_start, window_end";

/// The rows as JSON lines at `path`, and as CSV at `csv`.
fn write_input(path: &std::path::Path, csv: &std::path::Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create input"));
    let mut c = std::io::BufWriter::new(std::fs::File::create(csv).expect("create input"));
    let mut x: u64 = 7;
    let channels = ["Google", "Facebook", "Baidu", "Apple"];
    for i in 0..ROWS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ts = 1_767_225_600_000i64 + (i as i64) / 10;
        writeln!(
            f,
            r#"{{"auction":{},"bidder":{},"price":{},"channel":"{}","date_time":{ts}}}"#,
            1000 + x % 1000,
            2000 + (x >> 20) % 5000,
            (x >> 8) % 100_000,
            channels[(x >> 40) as usize % 4]
        )
        .expect("write input");
        writeln!(
            c,
            "{},{},{},{},{ts}",
            1000 + x % 1000,
            2000 + (x >> 20) % 5000,
            (x >> 8) % 100_000,
            channels[(x >> 40) as usize % 4]
        )
        .expect("write input");
    }
}

fn run(dir: &std::path::Path, select: &str, partitions: usize) -> u64 {
    run_with(dir, select, partitions, "")
}

fn run_with(dir: &std::path::Path, select: &str, partitions: usize, options: &str) -> u64 {
    let sql = format!(
        "CREATE STREAM bids (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, date_time TIMESTAMP,
           WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
         WITH (connector = 'file', path = '{}'{options});
         CREATE STREAM out WITH (connector = 'file', path = '{}');
         INSERT INTO out {select}",
        dir.join(if options.contains("csv") {
            "bids.csv"
        } else {
            "bids.jsonl"
        })
        .display(),
        dir.join("out.jsonl").display()
    );
    let script = eddy::plan_script(&sql).expect("bench SQL plans");
    let options = RunOptions {
        partitions,
        ..RunOptions::default()
    };
    let spec = eddy::JobSpec::new("bench", script.queries[0].clone()).options(options);
    let q = eddy::JobManager::new().submit(spec).expect("query starts");
    let stats = q.wait().expect("query runs");
    assert_eq!(stats.records_in, ROWS as u64);
    stats.records_out
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_input(&dir.path().join("bids.jsonl"), &dir.path().join("bids.csv"));
    let mut g = c.benchmark_group("eddy_run_jsonl_1m");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    for partitions in [1, 2] {
        g.bench_function(
            format!("baseline_decode_filter_all/partitions_{partitions}"),
            |b| {
                b.iter(|| {
                    run(
                        dir.path(),
                        "SELECT auction FROM bids WHERE price < 0",
                        partitions,
                    )
                })
            },
        );
        if partitions == 1 {
            g.bench_function("baseline_decode_filter_all_lenient/partitions_1", |b| {
                b.iter(|| {
                    run_with(
                        dir.path(),
                        "SELECT auction FROM bids WHERE price < 0",
                        1,
                        ", 'json.lenient' = 'true'",
                    )
                })
            });
            g.bench_function("baseline_decode_filter_all_csv/partitions_1", |b| {
                b.iter(|| {
                    run_with(
                        dir.path(),
                        "SELECT auction FROM bids WHERE price < 0",
                        1,
                        ", format = 'csv'",
                    )
                })
            });
        }
        g.bench_function(
            format!("tumble_10s_5aggs_by_auction/partitions_{partitions}"),
            |b| b.iter(|| run(dir.path(), TUMBLE, partitions)),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
