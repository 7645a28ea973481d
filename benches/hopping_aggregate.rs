//! Hopping windows (10 s every 2 s, and 10 s every 3 s: size not a multiple
//! of the slide), GROUP BY auction, over pre-built in-memory batches: the
//! operator pipeline alone, one thread. Each row is aggregated once into a
//! pane; windows merge panes when they close.
//!
//! Run: `cargo bench --bench hopping_aggregate`. Baseline in the same run:
//! the tumbling 10 s window with the same aggregate, which does no pane
//! merging, so the ratio is the cost of overlap.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eddy_suite::bench::{ROWS, batches, run};

fn bench(c: &mut Criterion) {
    let input = batches();
    let mut g = c.benchmark_group("hop");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(20);
    let q = |from: &str, aggs: &str| {
        format!(
            "SELECT auction, window_start, {aggs} FROM {from} GROUP BY auction, window_start, window_end"
        )
    };
    let tumble = "TUMBLE(bids, date_time, INTERVAL '10' SECOND)";
    let hop_2s = "HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)";
    let hop_3s = "HOP(bids, date_time, INTERVAL '3' SECOND, INTERVAL '10' SECOND)";
    let five =
        "COUNT(*) AS n, SUM(price) AS s, MIN(price) AS lo, MAX(price) AS hi, AVG(price) AS mean";
    g.bench_function("baseline_tumble_10s_count", |b| {
        b.iter(|| black_box(run(&q(tumble, "COUNT(*) AS n"), &input)))
    });
    g.bench_function("hop_10s_2s_count", |b| {
        b.iter(|| black_box(run(&q(hop_2s, "COUNT(*) AS n"), &input)))
    });
    g.bench_function("hop_10s_3s_count", |b| {
        b.iter(|| black_box(run(&q(hop_3s, "COUNT(*) AS n"), &input)))
    });
    g.bench_function("hop_10s_2s_5aggs", |b| {
        b.iter(|| black_box(run(&q(hop_2s, five), &input)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
