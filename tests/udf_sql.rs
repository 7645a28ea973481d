//! WebAssembly UDFs through SQL: filters and scalars in WHERE, SELECT and
//! GROUP BY keys, equal to the same logic written in SQL, with 1 and 2
//! partition workers; a hostile UDF fails its own query with the function's
//! name and the reason while a healthy query running at the same time
//! completes with correct output. The modules are built from examples-udf/.

use std::sync::Arc;

use eddy::udf::registry::Registry;
use eddy::udf::{UdfLimits, UdfModule};
use eddy::{CollectSink, RunOptions};

#[path = "support/lib.rs"]
#[allow(dead_code)]
mod support;

fn registry(dir: &std::path::Path, limits: UdfLimits) -> Vec<Arc<UdfModule>> {
    let mut r = Registry::open(dir, limits).expect("opens");
    r.register(&support::udf_wasm("geo"), None).expect("geo");
    r.register(&support::udf_wasm("hostile"), None)
        .expect("hostile");
    r.modules().to_vec()
}

const BIDS: &str = "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
  WITH (connector = 'nexmark', stream = 'bid', events = '200000', seed = '3',
        out_of_order = '0.05', max_delay_ms = '3000');";

/// The same bids, paced to the wall clock: about three seconds of input, so
/// a query over it is still running while another one fails (the endless
/// loop takes its full one-second limit).
const LIVE: &str = "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
  WITH (connector = 'nexmark', stream = 'bid', events = '300000', seed = '3',
        rate = '100000', realtime = 'true');";

fn rows(udfs: &[Arc<UdfModule>], select: &str, partitions: usize) -> Vec<String> {
    rows_of(BIDS, udfs, select, partitions)
}

fn rows_of(stream: &str, udfs: &[Arc<UdfModule>], select: &str, partitions: usize) -> Vec<String> {
    let script = eddy::plan_script_with_udfs(&format!("{stream}\n{select}"), udfs.to_vec())
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = &script.queries[0];
    let (batches, _) = eddy::collect(
        plan,
        &RunOptions {
            partitions,
            ..RunOptions::default()
        },
    )
    .expect("runs");
    let text = support::format_rows(&plan.output_schema, &batches);
    let mut lines: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn filters_and_scalars_equal_the_same_logic_in_sql() {
    let dir = tempfile::tempdir().expect("temp dir");
    let udfs = registry(dir.path(), UdfLimits::default());
    let wasm = "SELECT auction, window_start, COUNT(*) AS n, MAX(price_band(price)) AS band
        FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
        WHERE is_mobile(channel) GROUP BY auction, window_start, window_end";
    let sql = "SELECT auction, window_start, COUNT(*) AS n,
               MAX(CASE WHEN price < 0 THEN NULL WHEN price < 1000 THEN 'cheap'
                        WHEN price < 100000 THEN 'fair' ELSE 'dear' END) AS band
        FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
        WHERE lower(channel) IN ('apple', 'google') GROUP BY auction, window_start, window_end";
    let want = rows(&udfs, sql, 1);
    assert!(want.len() > 1000, "{} rows", want.len());
    for partitions in [1, 2] {
        assert_eq!(
            rows(&udfs, wasm, partitions),
            want,
            "partitions {partitions}"
        );
    }
    // a UDF as a GROUP BY key
    let by_band = "SELECT price_band(price) AS band, COUNT(*) AS n FROM bids GROUP BY price_band(price) EMIT FINAL";
    let by_case = "SELECT CASE WHEN price < 1000 THEN 'cheap' WHEN price < 100000 THEN 'fair' ELSE 'dear' END AS band,
                   COUNT(*) AS n FROM bids
                   GROUP BY CASE WHEN price < 1000 THEN 'cheap' WHEN price < 100000 THEN 'fair' ELSE 'dear' END EMIT FINAL";
    assert_eq!(rows(&udfs, by_band, 2), rows(&udfs, by_case, 1));
}

#[test]
fn explain_marks_wasm_calls_and_types_are_checked_at_plan_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let udfs = registry(dir.path(), UdfLimits::default());
    let script = eddy::plan_script_with_udfs(
        &format!("{BIDS}\nEXPLAIN SELECT auction FROM bids WHERE is_mobile(channel)"),
        udfs.clone(),
    )
    .expect("plans");
    let plan = script.explains[0].explain_text();
    assert!(
        plan.contains("Filter: predicate=wasm:is_mobile(channel)"),
        "{plan}"
    );
    let err = eddy::plan_script_with_udfs(
        &format!("{BIDS}\nSELECT geo_fence(channel, price) FROM bids"),
        udfs.clone(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("UDF geo_fence(DOUBLE, DOUBLE) -> BOOLEAN cannot take (VARCHAR, BIGINT)"),
        "{err}"
    );
    let err = eddy::plan_script_with_udfs(
        &format!("{BIDS}\nSELECT geo_fence(1.0) FROM bids"),
        udfs.clone(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("cannot take (DECIMAL(2, 1))"), "{err}");
    assert!(err.contains("pass arguments of those types"), "{err}");
    // a DECIMAL reaches a DOUBLE parameter as a DOUBLE; the ABI has no
    // DECIMAL, so an integer parameter refuses one and says how to scale it
    eddy::plan_script_with_udfs(
        &format!("{BIDS}\nSELECT geo_fence(47.4, 8.5) FROM bids"),
        udfs.clone(),
    )
    .expect("DECIMAL literals to DOUBLE parameters");
    let err = eddy::plan_script_with_udfs(
        &format!("{BIDS}\nSELECT price_band(price * 1.5) FROM bids"),
        udfs,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("cannot take (DECIMAL(21, 1))") && err.contains("CAST(price * 100 AS BIGINT)"),
        "{err}"
    );
}

#[test]
fn a_hostile_udf_fails_its_query_while_a_healthy_one_completes() {
    let dir = tempfile::tempdir().expect("temp dir");
    // the default limits: 1 s per call, 64 MiB (a shorter time limit could
    // interrupt the memory bomb before it reaches the cap on a loaded machine)
    let udfs = registry(dir.path(), UdfLimits::default());
    let healthy = "SELECT auction, window_start, COUNT(*) AS n, MIN(km_from_zurich(47.0, 8.0 + auction % 3)) AS km
        FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) GROUP BY auction, window_start, window_end";
    let want = rows_of(LIVE, &udfs, healthy, 1);
    assert!(want.len() > 100, "{} rows", want.len());
    for (function, reason) in [
        ("spin", "time limit of 1000 ms"),
        ("bomb", "memory limit of 64 MiB"),
        ("boom", "panicked"),
        ("huge", "memory limit of 64 MiB"),
    ] {
        let sink = CollectSink::default();
        let script = eddy::plan_script_with_udfs(&format!("{LIVE}\n{healthy}"), udfs.clone())
            .expect("plans");
        let spec = eddy::JobSpec::new("healthy", script.queries[0].clone())
            .sink(Box::new(sink.clone()))
            .options(RunOptions {
                partitions: 2,
                ..RunOptions::default()
            });
        let running = eddy::JobManager::new()
            .submit(spec)
            .expect("healthy query starts");
        let bad = eddy::plan_script_with_udfs(
            &format!("{BIDS}\nSELECT {function}(auction) AS x FROM bids"),
            udfs.clone(),
        )
        .expect("plans");
        let err = eddy::collect(&bad.queries[0], &RunOptions::default())
            .expect_err("the hostile query fails")
            .to_string();
        assert!(
            err.contains(&format!("UDF {function} failed")) && err.contains(reason),
            "{err}"
        );
        assert!(
            !running.is_finished(),
            "the healthy query must still be running when {function} fails"
        );
        running.wait().expect("the healthy query completes");
        let plan = &script.queries[0];
        let text = support::format_rows(&plan.output_schema, &sink.batches());
        let mut got: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
        got.sort();
        assert_eq!(got, want, "healthy output next to {function}");
    }
}
