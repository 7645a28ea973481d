//! Partitioned execution: the same query on the query runtime (source
//! thread, hash exchange, N partition workers, sink thread) with one and
//! with two workers, over 1,000,000 pre-built in-memory rows. On a 2-core
//! machine the ratio of the two is the speed-up the exchange delivers.
//!
//! Run: `cargo bench --bench partitions`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eddy_suite::bench::{ROWS, batches, run_threads};

const SESSION_BY_BIDDER: &str = "SELECT bidder, window_start, window_end, COUNT(*) AS n
     FROM SESSION(bids, date_time, INTERVAL '5' SECOND) GROUP BY bidder, window_start, window_end";

const HOP_5AGGS: &str =
    "SELECT auction, window_start, COUNT(*) AS n, SUM(price) AS s, MIN(price) AS lo,
            MAX(price) AS hi, AVG(price) AS mean
     FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
     GROUP BY auction, window_start, window_end";

fn bench(c: &mut Criterion) {
    let input = batches();
    for (name, sql) in [
        ("session_5s_by_bidder", SESSION_BY_BIDDER),
        ("hop_10s_2s_5aggs_by_auction", HOP_5AGGS),
    ] {
        let mut g = c.benchmark_group(format!("partitions_{name}"));
        g.throughput(Throughput::Elements(ROWS as u64));
        g.sample_size(10);
        for p in [1, 2] {
            g.bench_function(format!("partitions_{p}"), |b| {
                b.iter(|| black_box(run_threads(sql, &input, p)))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
