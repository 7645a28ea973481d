//! Session windows per auction (~1000 keys) and per bidder (~10,000 keys),
//! gap 5 s, COUNT per session, over pre-built
//! in-memory batches: the operator pipeline alone, one thread.
//!
//! Run: `cargo bench --bench session_aggregate`. Baseline in the same run:
//! the tumbling 10 s window with the same key and aggregate.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eddy_suite::bench::{ROWS, batches, run};

fn bench(c: &mut Criterion) {
    let input = batches();
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    g.bench_function("baseline_tumble_10s_count_by_auction", |b| {
        b.iter(|| {
            black_box(run(
                "SELECT auction, window_start, COUNT(*) AS n FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
                 GROUP BY auction, window_start, window_end",
                &input,
            ))
        })
    });
    g.bench_function("session_5s_count_by_auction", |b| {
        b.iter(|| {
            black_box(run(
                "SELECT auction, window_start, window_end, COUNT(*) AS n
                 FROM SESSION(bids, date_time, INTERVAL '5' SECOND) GROUP BY auction, window_start, window_end",
                &input,
            ))
        })
    });
    g.bench_function("session_5s_count_by_bidder", |b| {
        b.iter(|| {
            black_box(run(
                "SELECT bidder, window_start, window_end, COUNT(*) AS n
                 FROM SESSION(bids, date_time, INTERVAL '5' SECOND) GROUP BY bidder, window_start, window_end",
                &input,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
