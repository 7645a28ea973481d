//! Tumbling 10 s window, GROUP BY auction, COUNT/SUM/MIN/MAX/AVG over
//! pre-built in-memory batches: the operator pipeline alone (watermark,
//! window assignment, group lookup, accumulators, emission), one thread.
//!
//! `dollars_decimal` against `dollars_double`: the same aggregates of
//! `price * 0.01` as an exact DECIMAL and as a DOUBLE.
//!
//! Run: `cargo bench --bench tumbling_aggregate`. Baseline in the same run:
//! a watermark + projection pipeline over the same batches (the floor any
//! query pays), so the ratio survives a noisy machine.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eddy_suite::bench::{ROWS, batches, run};

fn bench(c: &mut Criterion) {
    let input = batches();
    let mut g = c.benchmark_group("tumble_10s");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(20);
    g.bench_function("baseline_watermark_project", |b| {
        b.iter(|| black_box(run("SELECT auction, price, date_time FROM bids", &input)))
    });
    g.bench_function("count_by_auction", |b| {
        b.iter(|| {
            black_box(run(
                "SELECT auction, window_start, COUNT(*) AS n
                 FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
                 GROUP BY auction, window_start, window_end",
                &input,
            ))
        })
    });
    g.bench_function("count_sum_min_max_avg_by_auction", |b| {
        b.iter(|| {
            black_box(run(
                "SELECT auction, window_start, window_end, COUNT(*) AS n, SUM(price) AS s,
                        MIN(price) AS lo, MAX(price) AS hi, AVG(price) AS mean
                 FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
                 GROUP BY auction, window_start, window_end",
                &input,
            ))
        })
    });
    // exact DECIMAL arithmetic and aggregates against the same over DOUBLE
    for (name, factor) in [("dollars_double", "0.01e0"), ("dollars_decimal", "0.01")] {
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(run(
                    &format!(
                        "SELECT auction, window_start, window_end, SUM(price * {factor}) AS s,
                                MIN(price * {factor}) AS lo, MAX(price * {factor}) AS hi,
                                AVG(price * {factor}) AS mean
                         FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
                         GROUP BY auction, window_start, window_end"
                    ),
                    &input,
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
