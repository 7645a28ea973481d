//! WebAssembly UDFs against the same logic built into the engine, in the
//! same run: a filter over two DOUBLE columns (`in_region(lat, lon)` vs
//! `lat BETWEEN 45 AND 48 AND lon BETWEEN 5 AND 11`) on 1,000,000 rows in
//! 8192-row batches, and the fixed cost of one call (a 1-row batch).
//! The module is built from examples-udf/ first.
//!
//! Run: `cargo bench --bench udf`.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::Float64Array;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eddy::exec::metrics::QueryMetrics;
use eddy::exec::operator::Message;
use eddy::exec::pipeline::Pipeline;
use eddy::udf::registry::Registry;
use eddy::udf::{UdfLimits, UdfModule};
use eddy_suite::bench::{BATCH, ROWS};

fn points(rows: usize, batch: usize) -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
    ]));
    let mut x: u64 = 17;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 10_000) as f64 / 100.0
    };
    (0..rows)
        .step_by(batch)
        .map(|start| {
            let n = batch.min(rows - start);
            let lat: Float64Array = (0..n).map(|_| Some(next() * 0.9)).collect();
            let lon: Float64Array = (0..n).map(|_| Some(next() * 0.3)).collect();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(lat), Arc::new(lon)]).expect("batch")
        })
        .collect()
}

fn pipeline(udfs: &[Arc<UdfModule>], select: &str) -> Pipeline {
    let sql = format!(
        "CREATE STREAM pts (lat DOUBLE, lon DOUBLE) WITH (connector = 'file', path = 'in-memory.jsonl');\n{select}"
    );
    let script = eddy::plan_script_with_udfs(&sql, udfs.to_vec()).expect("plans");
    Pipeline::build(&script.queries[0], &Arc::new(QueryMetrics::default())).expect("builds")
}

fn run(p: &mut Pipeline, input: &[RecordBatch]) -> usize {
    let mut rows = 0;
    for b in input {
        for m in p.push(Message::Batch(b.clone())).expect("push") {
            if let Message::Batch(b) = m {
                rows += b.num_rows();
            }
        }
    }
    rows
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut r = Registry::open(dir.path(), UdfLimits::default()).expect("registry");
    r.register(&eddy_suite::udf_wasm("geo"), None)
        .expect("registers");
    let udfs = r.modules().to_vec();
    let input = points(ROWS, BATCH);
    let native = "SELECT lat FROM pts WHERE lat BETWEEN 45.0 AND 48.0 AND lon BETWEEN 5.0 AND 11.0";
    let wasm = "SELECT lat FROM pts WHERE in_region(lat, lon)";
    let (mut n, mut w) = (pipeline(&udfs, native), pipeline(&udfs, wasm));
    assert_eq!(run(&mut n, &input), run(&mut w, &input), "same rows pass");
    let mut g = c.benchmark_group("udf_filter_two_doubles");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(20);
    g.bench_function("baseline_native_between", |b| {
        b.iter(|| black_box(run(&mut n, &input)))
    });
    g.bench_function("wasm_in_region", |b| {
        b.iter(|| black_box(run(&mut w, &input)))
    });
    g.finish();

    let one = points(1, 1);
    let mut g = c.benchmark_group("udf_call_one_row");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_native_between", |b| {
        b.iter(|| black_box(run(&mut n, &one)))
    });
    g.bench_function("wasm_in_region", |b| {
        b.iter(|| black_box(run(&mut w, &one)))
    });
    g.finish();
}

/// `median(price)` over 1,000,000 rows in 1000 groups: the WebAssembly
/// accumulator (one update call per batch with a group-index column, one
/// finish call) against the same `Median` type compiled natively.
fn median(c: &mut Criterion) {
    use arrow::array::{ArrayRef, Float64Array};
    use eddy::agg::Accumulator;
    use eddy::agg::wasm::WasmAccumulator;
    use eddy_udf::Aggregate;

    let bytes = std::fs::read(eddy_suite::udf_wasm("stats")).expect("built");
    let module = UdfModule::load("stats", &bytes, UdfLimits::default()).expect("loads");
    let groups = 1000usize;
    let mut x: u64 = 5;
    let batches: Vec<(ArrayRef, Vec<u32>)> = (0..ROWS / BATCH + 1)
        .map(|_| {
            let n = BATCH;
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 100_000) as f64
                })
                .collect();
            let g: Vec<u32> = (0..n).map(|i| (i % groups) as u32).collect();
            (Arc::new(Float64Array::from(values)) as ArrayRef, g)
        })
        .collect();
    let rows: usize = batches.iter().map(|(_, g)| g.len()).sum();
    let mut g = c.benchmark_group("udf_median_1000_groups");
    g.throughput(Throughput::Elements(rows as u64));
    g.sample_size(10);
    g.bench_function("baseline_native_median", |b| {
        b.iter(|| {
            let mut states: Vec<stats::Median> = (0..groups).map(|_| Default::default()).collect();
            for (values, gi) in &batches {
                let v = values.as_any().downcast_ref::<Float64Array>().expect("f64");
                for (x, &k) in v.values().iter().zip(gi) {
                    states[k as usize].update(*x);
                }
            }
            black_box(states.iter().map(|s| s.finish()).collect::<Vec<_>>())
        })
    });
    g.bench_function("wasm_median", |b| {
        let instance = Arc::new(std::sync::Mutex::new(
            eddy::udf::UdfInstance::new(&module).expect("instantiates"),
        ));
        b.iter(|| {
            let mut acc =
                WasmAccumulator::new(instance.clone(), "median", eddy::types::SqlType::Double)
                    .expect("accumulator");
            for (values, gi) in &batches {
                acc.update_batch(std::slice::from_ref(values), gi, groups)
                    .expect("update");
            }
            black_box(acc.evaluate(groups).expect("finish"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench, median);
criterion_main!(benches);
