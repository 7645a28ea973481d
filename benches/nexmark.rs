//! The Nexmark suite (tests/nexmark/qN.sql: Flink's text, DDL adapted) over
//! the built-in generator into the queries' blackhole sinks, on the same
//! threads and library calls `eddy run` uses, with two partition workers
//! (this machine's two cores). Throughput counts the generator's events —
//! the whole mixed person/auction/bid sequence, as Nexmark does.
//!
//! Run: `cargo bench --bench nexmark` (all), or `cargo bench --bench nexmark
//! -- q5` (one). Baseline in the same run: q0, the pass-through, which
//! measures generation and the pipeline alone; read each query as a ratio
//! to it. `scripts/nexmark-bench.sh` runs the same queries through the
//! release `eddy run` binary.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eddy::RunOptions;

const EVENTS: u64 = 1_000_000;

/// q6 is refused (as by Flink).
const QUERIES: &[usize] = &[
    0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
];

fn plan(
    q: usize,
    udfs: &[std::sync::Arc<eddy::udf::UdfModule>],
    side: &std::path::Path,
) -> eddy::PhysicalPlan {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/nexmark");
    let ddl = std::fs::read_to_string(format!("{dir}/ddl.sql")).expect("ddl.sql");
    let query = std::fs::read_to_string(format!("{dir}/q{q}.sql"))
        .expect("the query")
        .replace("${SIDE_INPUT}", &side.display().to_string());
    let script = format!(
        "{}\n{query}",
        ddl.replace("${GENERATOR}", &format!("events = '{EVENTS}'"))
    );
    let script = eddy::plan_script_with_udfs(&script, udfs.to_vec()).expect("plans");
    script.queries[0].clone()
}

fn run(plan: &eddy::PhysicalPlan) {
    let options = RunOptions {
        partitions: 2,
        ..RunOptions::default()
    };
    let spec = eddy::JobSpec::new("bench", plan.clone()).options(options);
    let q = eddy::JobManager::new().submit(spec).expect("query starts");
    q.wait().expect("query runs");
}

fn bench(c: &mut Criterion) {
    let wasm = std::fs::read(eddy_suite::udf_wasm("nexmark")).expect("built");
    let udfs =
        vec![eddy::udf::UdfModule::load("nexmark", &wasm, Default::default()).expect("loads")];
    // q13's side input: keys 0..9999
    let dir = tempfile::tempdir().expect("temp dir");
    let side = dir.path().join("side_input.jsonl");
    let lines: String = (0..10_000)
        .map(|k| format!("{{\"key\":{k},\"value\":\"side-{k}\"}}\n"))
        .collect();
    std::fs::write(&side, lines).expect("writes the side input");
    let mut g = c.benchmark_group("nexmark_1m_events_2_workers");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    for &q in QUERIES {
        let p = plan(q, &udfs, &side);
        g.bench_function(format!("q{q}"), |b| b.iter(|| run(&p)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
