//! Aggregate UDFs (examples-udf/stats, built from source) through SQL:
//! median and percentiles per tumbling and per hopping window equal an
//! independent computation on the same generated events; the edges of the
//! percentile semantics (n = 1, 2, ties, NULLs, no values) are exact; merges
//! work for sessions (a late row bridging two) and EMIT CHANGES; results do
//! not depend on the number of partition workers; in a row window each frame
//! is aggregated afresh (the documented fallback, since a WASM aggregate
//! cannot retract).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use eddy::RunOptions;
use eddy::connectors::nexmark::{NexmarkConfig, NexmarkGenerator, NexmarkKind};
use eddy::udf::registry::Registry;
use eddy::udf::{UdfLimits, UdfModule};

#[path = "support/lib.rs"]
#[allow(dead_code)]
mod support;

fn udfs() -> (tempfile::TempDir, Vec<Arc<UdfModule>>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut r = Registry::open(dir.path(), UdfLimits::default()).expect("opens");
    r.register(&support::udf_wasm("stats"), None)
        .expect("stats");
    let m = r.modules().to_vec();
    (dir, m)
}

/// Runs with `partitions` workers; one row per source batch, as a live
/// stream would deliver them (so late rows are late).
fn run(
    udfs: &[Arc<UdfModule>],
    sql: &str,
    partitions: usize,
) -> Vec<arrow::record_batch::RecordBatch> {
    let script = eddy::plan_script_with_udfs(sql, udfs.to_vec()).unwrap_or_else(|e| panic!("{e}"));
    eddy::collect(
        &script.queries[0],
        &RunOptions {
            partitions,
            batch_size: if sql.contains("'file'") { 1 } else { 8192 },
            ..RunOptions::default()
        },
    )
    .expect("runs")
    .0
}

/// PostgreSQL's percentile_cont, written independently of the UDF: the
/// value at rank q·(n − 1) of the sorted values, interpolated as
/// `lower + (upper − lower) · fraction` (the same arithmetic, so results
/// compare exactly).
fn percentile_cont(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let rank = q * (v.len() as f64 - 1.0);
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    v[below] + (v[above] - v[below]) * (rank - below as f64)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

const EVENTS: u64 = 200_000;

/// Bid prices per (auction, window start) for windows of `size` every `slide`.
fn reference(slide: i64, size: i64) -> HashMap<(i64, i64), Vec<f64>> {
    let config = NexmarkConfig {
        events: Some(EVENTS),
        seed: 21,
        ..NexmarkConfig::default()
    };
    let mut g = NexmarkGenerator::new(config, NexmarkKind::Bid);
    let mut groups: HashMap<(i64, i64), Vec<f64>> = HashMap::new();
    while let Some(b) = g.next_batch(4096) {
        let auction = b.column(0).as_primitive::<Int64Type>();
        let price = b.column(2).as_primitive::<Int64Type>();
        let ts = b.column(5).as_primitive::<TimestampMillisecondType>();
        for r in 0..b.num_rows() {
            let t = ts.value(r);
            let mut start = t.div_euclid(slide) * slide;
            while start + size > t {
                groups
                    .entry((auction.value(r), start))
                    .or_default()
                    .push(price.value(r) as f64);
                start -= slide;
            }
        }
    }
    groups
}

fn check_windows(window: &str, slide: i64, size: i64) {
    let (_dir, udfs) = udfs();
    let want = reference(slide, size);
    let sql = format!(
        "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
         WITH (connector = 'nexmark', stream = 'bid', events = '{EVENTS}', seed = '21');
         SELECT auction, window_start, median(price) AS med, p90(price) AS p90, percentile(price, 0.25) AS p25
         FROM {window} GROUP BY auction, window_start, window_end"
    );
    for partitions in [1, 2] {
        let mut seen = 0;
        for b in run(&udfs, &sql, partitions) {
            let auction = b.column(0).as_primitive::<Int64Type>();
            let start = b.column(1).as_primitive::<TimestampMillisecondType>();
            let f = |c: usize| b.column(c).as_primitive::<Float64Type>().clone();
            let (med, p90, p25) = (f(2), f(3), f(4));
            for r in 0..b.num_rows() {
                let prices = &want[&(auction.value(r), start.value(r))];
                for (got, q) in [
                    (med.value(r), 0.5),
                    (p90.value(r), 0.9),
                    (p25.value(r), 0.25),
                ] {
                    let expect = percentile_cont(prices.clone(), q);
                    assert_eq!(got, expect, "q {q} over {prices:?}");
                }
                seen += 1;
            }
        }
        assert_eq!(
            seen,
            want.len(),
            "every (auction, window), partitions {partitions}"
        );
    }
}

#[test]
fn median_and_percentiles_per_tumbling_window_match_a_batch_computation() {
    check_windows("TUMBLE(bids, date_time, INTERVAL '2' SECOND)", 2_000, 2_000);
}

#[test]
fn median_and_percentiles_per_hopping_window_match_a_batch_computation() {
    // panes of 1 s merged into 3 s windows every 1 s: states cross as bytes
    check_windows(
        "HOP(bids, date_time, INTERVAL '1' SECOND, INTERVAL '3' SECOND)",
        1_000,
        3_000,
    );
}

/// EMA in arrival order, by its definition.
fn ema(values: &[f64], alpha: f64) -> f64 {
    values[1..]
        .iter()
        .fold(values[0], |e, &x| alpha * x + (1.0 - alpha) * e)
}

#[test]
fn ema_is_stateful_across_rows_and_survives_pane_merges() {
    let (_dir, udfs) = udfs();
    // events arrive in time order, so arrival order is time order in every
    // window, and a window merged from panes sees its rows in that order
    for (window, slide, size) in [
        ("TUMBLE(bids, date_time, INTERVAL '2' SECOND)", 2_000, 2_000),
        (
            "HOP(bids, date_time, INTERVAL '1' SECOND, INTERVAL '3' SECOND)",
            1_000,
            3_000,
        ),
    ] {
        let want = reference(slide, size);
        let sql = format!(
            "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
             WITH (connector = 'nexmark', stream = 'bid', events = '{EVENTS}', seed = '21');
             SELECT auction, window_start, ema(price, 0.3) AS e
             FROM {window} GROUP BY auction, window_start, window_end"
        );
        let mut seen = 0;
        for b in run(&udfs, &sql, 2) {
            let auction = b.column(0).as_primitive::<Int64Type>();
            let start = b.column(1).as_primitive::<TimestampMillisecondType>();
            let e = b.column(2).as_primitive::<Float64Type>();
            for r in 0..b.num_rows() {
                let prices = &want[&(auction.value(r), start.value(r))];
                let expect = ema(prices, 0.3);
                assert!(
                    close(e.value(r), expect),
                    "{window}: {} vs {expect}",
                    e.value(r)
                );
                seen += 1;
            }
        }
        assert_eq!(seen, want.len(), "{window}");
    }
}

fn rendered(udfs: &[Arc<UdfModule>], sql: &str, partitions: usize) -> Vec<String> {
    let script = eddy::plan_script_with_udfs(sql, udfs.to_vec()).expect("plans");
    let plan = &script.queries[0];
    let batches = run(udfs, sql, partitions);
    let text = support::format_rows(&plan.output_schema, &batches);
    let mut lines: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn percentile_edges_are_exact() {
    let (_dir, udfs) = udfs();
    let sql = "CREATE STREAM s (k VARCHAR, x DOUBLE, w DOUBLE, t TIMESTAMP, WATERMARK FOR t AS t)
         WITH (connector = 'file', path = 'tests/data/udaf_edges.jsonl');
         SELECT k, median(x) AS med, p90(x) AS p90, percentile(x, 0.5) AS p50, weighted_avg(x, w) AS wavg
         FROM TUMBLE(s, t, INTERVAL '1' SECOND) GROUP BY k, window_start, window_end";
    let want = [
        "none | NULL | NULL | NULL | NULL",
        "nulls | 3.0 | 3.0 | 3.0 | NULL",
        "one | 7.0 | 7.0 | 7.0 | 7.0",
        "tick | 0.0 | 0.0 | 0.0 | NULL",
        "ties | 5.0 | 7.800000000000001 | 5.0 | 6.0",
        "two | 2.5 | 3.7 | 2.5 | 3.25",
    ];
    for partitions in [1, 2] {
        assert_eq!(
            rendered(&udfs, sql, partitions),
            want,
            "partitions {partitions}"
        );
    }
}

#[test]
fn sessions_merge_states_and_changes_rebuild_the_final_rows() {
    let (_dir, udfs) = udfs();
    // clicks_late: u1's sessions [0, 3) and [6, 9) are bridged by a late click at 3 s
    let stream = "CREATE STREAM c (user VARCHAR, t TIMESTAMP, WATERMARK FOR t AS t)
         WITH (connector = 'file', path = 'tests/sql/data/clicks_late.jsonl', allowed_lateness = '10 s');";
    let sql = format!(
        "{stream}
         SELECT user, window_start, window_end, COUNT(*) AS n,
                median(CAST(EXTRACT(SECOND FROM t) AS DOUBLE)) AS med
         FROM SESSION(c, t, INTERVAL '3' SECOND) GROUP BY user, window_start, window_end"
    );
    assert_eq!(
        rendered(&udfs, &sql, 1),
        [
            "u1 | 2026-01-01T00:00:00Z | 2026-01-01T00:00:09Z | 3 | 3.0",
            "u1 | 2026-01-01T00:00:12Z | 2026-01-01T00:00:15Z | 1 | 12.0",
            "u1 | 2026-01-01T00:00:30Z | 2026-01-01T00:00:33Z | 1 | 30.0",
        ]
    );
    // EMIT CHANGES reads each group's current median without consuming it
    let changes = rendered(&udfs, &format!("{sql} EMIT CHANGES"), 1);
    assert!(
        changes.contains(
            &"+U | u1 | 2026-01-01T00:00:00Z | 2026-01-01T00:00:09Z | 3 | 3.0".to_string()
        ),
        "{changes:?}"
    );
}

/// WebAssembly aggregates in a row window: `median` retracts the rows that
/// leave the frame (one sliding call per batch); `p90` cannot retract, so
/// each frame is aggregated afresh. Both equal the frame's rescan.
#[test]
fn median_over_a_rows_frame_matches_a_rescan() {
    let (_dir, udfs) = udfs();
    let sql = "CREATE STREAM bids (WATERMARK FOR date_time AS date_time)
         WITH (connector = 'nexmark', stream = 'bid', events = '20000', seed = '4');
         SELECT auction, date_time, price,
                median(price) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS med,
                COUNT(*) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS n,
                p90(price) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS p90
         FROM bids";
    // events arrive in time order: the frame is the auction's last 5 bids
    let config = NexmarkConfig {
        events: Some(20_000),
        seed: 4,
        ..NexmarkConfig::default()
    };
    let mut g = NexmarkGenerator::new(config, NexmarkKind::Bid);
    let mut seen: HashMap<i64, Vec<f64>> = HashMap::new();
    let mut want: Vec<String> = Vec::new();
    while let Some(b) = g.next_batch(4096) {
        let auction = b.column(0).as_primitive::<Int64Type>();
        let price = b.column(2).as_primitive::<Int64Type>();
        let ts = b.column(5).as_primitive::<TimestampMillisecondType>();
        for r in 0..b.num_rows() {
            let prices = seen.entry(auction.value(r)).or_default();
            prices.push(price.value(r) as f64);
            let frame: Vec<f64> = prices.iter().rev().take(5).copied().collect();
            want.push(format!(
                "{} {} {} {:.6} {} {:.6}",
                auction.value(r),
                ts.value(r),
                price.value(r),
                percentile_cont(frame.clone(), 0.5),
                frame.len(),
                percentile_cont(frame.clone(), 0.9)
            ));
        }
    }
    want.sort();
    for partitions in [1, 2] {
        let mut got: Vec<String> = Vec::new();
        for b in run(&udfs, sql, partitions) {
            let auction = b.column(0).as_primitive::<Int64Type>();
            let ts = b.column(1).as_primitive::<TimestampMillisecondType>();
            let price = b.column(2).as_primitive::<Int64Type>();
            let med = b.column(3).as_primitive::<Float64Type>();
            let n = b.column(4).as_primitive::<Int64Type>();
            let p90 = b.column(5).as_primitive::<Float64Type>();
            for r in 0..b.num_rows() {
                got.push(format!(
                    "{} {} {} {:.6} {} {:.6}",
                    auction.value(r),
                    ts.value(r),
                    price.value(r),
                    med.value(r),
                    n.value(r),
                    p90.value(r)
                ));
            }
        }
        got.sort();
        assert_eq!(got.len(), want.len(), "partitions {partitions}");
        assert!(got == want, "partitions {partitions}: frames differ");
    }
}

/// A frame's first retraction is of a NULL row (never added, so nothing to
/// retract: the sliding call succeeds), the next of a real one, which `p90`
/// cannot retract: that release falls back to aggregating its frames afresh
/// and must read them as they were at each row, not as nothing.
#[test]
fn a_failed_retraction_after_a_skipped_null_recomputes_the_frames() {
    let (_dir, udfs) = udfs();
    let sql = "CREATE STREAM s (k VARCHAR, x DOUBLE, t TIMESTAMP, WATERMARK FOR t AS t)
         WITH (connector = 'file', path = 'tests/data/udaf_null_frames.jsonl');
         SELECT k, t, p90(x) OVER (PARTITION BY k ORDER BY t ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS p90
         FROM s";
    assert_eq!(
        rendered(&udfs, sql, 1),
        [
            "a | 2026-01-01T00:00:00Z | NULL",
            "a | 2026-01-01T00:00:01Z | 1.0",
            "a | 2026-01-01T00:00:02Z | 1.9",
            "a | 2026-01-01T00:00:03Z | 2.9",
            "a | 2026-01-01T00:00:04Z | 3.9",
        ]
    );
}
