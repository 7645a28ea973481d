//! Physical plans round-trip through JSON: every query and EXPLAIN of the
//! examples and the golden cases (and plans calling WebAssembly functions)
//! is written, read back and written again to the same JSON, explains the
//! same, and a plan read back runs to the same rows.

use std::path::Path;
use std::sync::Arc;

use eddy::PhysicalPlan;
use eddy::udf::{UdfLimits, UdfModule};

#[path = "support/lib.rs"]
#[allow(dead_code)]
mod support;

/// Every plan of every script in `dir` that plans (the error cases do not).
fn plans(dir: &str, udfs: &[Arc<UdfModule>]) -> Vec<(String, PhysicalPlan)> {
    let mut files: Vec<_> = std::fs::read_dir(Path::new(dir))
        .expect("a directory of scripts")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let sql = std::fs::read_to_string(&f).expect("readable");
        let Ok(script) = eddy::plan_script_with_udfs(&sql, udfs.to_vec()) else {
            continue;
        };
        for (i, p) in script.explains.iter().chain(&script.queries).enumerate() {
            out.push((format!("{} #{i}", f.display()), p.clone()));
        }
    }
    out
}

fn round_trip(name: &str, plan: &PhysicalPlan, udfs: &[Arc<UdfModule>]) -> PhysicalPlan {
    let json = plan.to_json().unwrap_or_else(|e| panic!("{name}: {e}"));
    let back = PhysicalPlan::from_json(&json, udfs).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(back.to_json().expect("writes again"), json, "{name}");
    assert_eq!(back.explain_text(), plan.explain_text(), "{name}");
    assert_eq!(back.explain_json(), plan.explain_json(), "{name}");
    assert_eq!(back.output_schema, plan.output_schema, "{name}");
    assert_eq!(back.source.schema, plan.source.schema, "{name}");
    // every node kind derives its output from its input: the chain ends in the plan's output
    let last = back.node_schemas().pop();
    assert_eq!(
        last.as_ref().unwrap_or(&back.source.schema).fields(),
        plan.output_schema.fields(),
        "{name}"
    );
    back
}

#[test]
fn every_example_and_golden_plan_round_trips() {
    let mut n = 0;
    for dir in ["examples/sql", "tests/sql"] {
        for (name, plan) in plans(dir, &[]) {
            round_trip(&name, &plan, &[]);
            n += 1;
        }
    }
    assert!(n >= 30, "only {n} plans");
}

#[test]
fn a_plan_read_back_runs_to_the_same_rows() {
    let mut n = 0;
    for (name, plan) in plans("tests/sql", &[]) {
        if !name.contains("tumble") && !name.contains("session") && !name.contains("over") {
            continue;
        }
        let back = round_trip(&name, &plan, &[]);
        assert_eq!(
            support::run_query(&back, 1, 1),
            support::run_query(&plan, 1, 1),
            "{name}"
        );
        n += 1;
    }
    assert!(n >= 4, "only {n} plans ran");
}

#[test]
fn plans_calling_webassembly_resolve_their_modules_when_read() {
    let load = |name: &str| {
        let bytes = std::fs::read(support::udf_wasm(name)).expect("built");
        UdfModule::load(name, &bytes, UdfLimits::default()).expect("loads")
    };
    let udfs = vec![load("geo"), load("stats")];
    let sql = "CREATE STREAM bids (auction BIGINT, price DOUBLE, lat DOUBLE, lon DOUBLE, date_time TIMESTAMP,
                 WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
               WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');
               SELECT auction, window_start, median(price) AS med, COUNT(*) AS n
               FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
               WHERE in_region(lat, lon)
               GROUP BY auction, window_start, window_end";
    let script = eddy::plan_script_with_udfs(sql, udfs.clone()).expect("plans");
    let plan = &script.queries[0];
    round_trip("udf plan", plan, &udfs);
    // without the modules the plan cannot be read, and says which is missing
    let e = PhysicalPlan::from_json(&plan.to_json().expect("writes"), &udfs[1..])
        .expect_err("in_region's module is missing")
        .to_string();
    assert!(
        e.contains("in_region") && e.contains("UDF module 'geo'") && e.contains("register"),
        "{e}"
    );
}
