//! Row windows: `AVG(price) OVER (PARTITION BY auction ORDER BY date_time
//! ROWS BETWEEN 100 PRECEDING AND CURRENT ROW)` over 1,000,000 pre-built
//! rows (~1000 auctions), the operator pipeline alone on one thread.
//!
//! Run: `cargo bench --bench row_window`. Baseline in the same run: the
//! watermark and a projection of the same columns, no window.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eddy_suite::bench::{ROWS, batches, run};

fn bench(c: &mut Criterion) {
    let input = batches();
    let mut g = c.benchmark_group("row_window");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    g.bench_function("baseline_project", |b| {
        b.iter(|| black_box(run("SELECT auction, price FROM bids", &input)))
    });
    g.bench_function("rows_100_avg_by_auction", |b| {
        b.iter(|| {
            black_box(run(
                "SELECT auction, price, AVG(price) OVER (PARTITION BY auction ORDER BY date_time
                   ROWS BETWEEN 100 PRECEDING AND CURRENT ROW) AS a FROM bids",
                &input,
            ))
        })
    });
    g.bench_function("range_10s_min_max_by_auction", |b| {
        b.iter(|| {
            black_box(run(
                "SELECT auction, price,
                   MIN(price) OVER (PARTITION BY auction ORDER BY date_time RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW) AS lo,
                   MAX(price) OVER (PARTITION BY auction ORDER BY date_time RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW) AS hi
                 FROM bids",
                &input,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
