//! Correctness at scale: ≥ 1,000,000 generated bids, 5% out of order;
//! tumbling 10 s COUNT/SUM/MIN/MAX/AVG per auction from the engine must
//! equal a batch GROUP BY over window buckets computed here, independently,
//! from the same generated events.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use eddy::RunOptions;
use eddy::connectors::nexmark::{NexmarkConfig, NexmarkGenerator, NexmarkKind};

const EVENTS: u64 = 1_087_000; // 1,000,040 bids
const SIZE: i64 = 10_000;
const DELAY: i64 = 4_000;

#[derive(Debug, Clone, PartialEq)]
struct Agg {
    n: i64,
    sum: i64,
    min: i64,
    max: i64,
    mean: f64,
}

type Table = HashMap<(i64, i64), Agg>;

fn engine(max_delay_ms: i64) -> (Table, eddy::QueryStats) {
    let sql = format!(
        "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '{DELAY}' MILLISECOND)
         WITH (connector = 'nexmark', stream = 'bid', events = '{EVENTS}', seed = '42',
               out_of_order = '0.05', max_delay_ms = '{max_delay_ms}');
         SELECT auction, window_start, COUNT(*) AS n, SUM(price) AS s, MIN(price) AS lo,
                MAX(price) AS hi, AVG(price) AS mean
         FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
         GROUP BY auction, window_start, window_end"
    );
    let script = eddy::plan_script(&sql).expect("plans");
    let (batches, stats) = eddy::collect(&script.queries[0], &RunOptions::default()).expect("runs");
    let mut table = Table::new();
    for b in &batches {
        let col = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
        let (auction, n, s, lo, hi) = (col(0), col(2), col(3), col(4), col(5));
        let ws = b.column(1).as_primitive::<TimestampMillisecondType>();
        let mean = b.column(6).as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            let agg = Agg {
                n: n.value(r),
                sum: s.value(r),
                min: lo.value(r),
                max: hi.value(r),
                mean: mean.value(r),
            };
            let dup = table.insert((auction.value(r), ws.value(r)), agg);
            assert!(
                dup.is_none(),
                "window emitted twice: auction {} at {}",
                auction.value(r),
                ws.value(r)
            );
            assert!(!auction.is_null(r));
        }
    }
    (table, stats)
}

/// The reference: replays the generator's bids batch by batch (as the
/// source hands them over), drops rows whose window the watermark has
/// already passed, and groups the rest by (auction, window).
fn reference(max_delay_ms: i64) -> (Table, u64, u64, u64) {
    let config = NexmarkConfig {
        events: Some(EVENTS),
        seed: 42,
        out_of_order: 0.05,
        max_delay_ms,
        ..NexmarkConfig::default()
    };
    let mut generator = NexmarkGenerator::new(config, NexmarkKind::Bid);
    let mut acc: HashMap<(i64, i64), (i64, i64, i64, i64)> = HashMap::new();
    let (mut rows, mut late, mut out_of_order) = (0u64, 0u64, 0u64);
    let mut watermark = i64::MIN;
    let mut max_seen = i64::MIN;
    while let Some(b) = generator.next_batch(RunOptions::default().batch_size) {
        let auction = b.column(0).as_primitive::<Int64Type>();
        let price = b.column(2).as_primitive::<Int64Type>();
        let ts = b.column(5).as_primitive::<TimestampMillisecondType>();
        let mut batch_max = i64::MIN;
        for r in 0..b.num_rows() {
            rows += 1;
            let t = ts.value(r);
            out_of_order += u64::from(t < max_seen);
            max_seen = max_seen.max(t);
            batch_max = batch_max.max(t);
            let window = t.div_euclid(SIZE) * SIZE;
            if window + SIZE <= watermark {
                late += 1;
                continue;
            }
            let p = price.value(r);
            let e = acc
                .entry((auction.value(r), window))
                .or_insert((0, 0, i64::MAX, i64::MIN));
            e.0 += 1;
            e.1 += p;
            e.2 = e.2.min(p);
            e.3 = e.3.max(p);
        }
        watermark = watermark.max(batch_max - DELAY);
    }
    let table = acc
        .into_iter()
        .map(|(k, (n, sum, min, max))| {
            (
                k,
                Agg {
                    n,
                    sum,
                    min,
                    max,
                    mean: sum as f64 / n as f64,
                },
            )
        })
        .collect();
    (table, rows, late, out_of_order)
}

fn compare(max_delay_ms: i64) -> (eddy::QueryStats, u64, u64) {
    let (got, stats) = engine(max_delay_ms);
    let (want, rows, late, out_of_order) = reference(max_delay_ms);
    assert!(rows >= 1_000_000, "{rows} bids");
    assert_eq!(stats.records_in, rows);
    assert_eq!(stats.late_dropped, late);
    assert_eq!(got.len(), want.len(), "number of (auction, window) rows");
    for (k, w) in &want {
        assert_eq!(got.get(k), Some(w), "auction {} window {}", k.0, k.1);
    }
    (stats, late, out_of_order)
}

#[test]
fn million_bids_within_the_watermark_delay_match_a_batch_group_by() {
    let (stats, late, out_of_order) = compare(3_000);
    assert_eq!(late, 0, "every out-of-order bid is within the 4 s delay");
    assert!(
        out_of_order > 40_000,
        "{out_of_order} rows arrived out of order"
    );
    assert_eq!(stats.null_time_dropped, 0);
}

#[test]
fn million_bids_beyond_the_watermark_delay_drop_exactly_the_late_rows() {
    let (_, late, _) = compare(9_000);
    assert!(late > 1_000, "{late} late rows");
}
