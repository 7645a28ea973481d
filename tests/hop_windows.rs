//! Hopping windows against a brute-force reference: every row is added to
//! every window covering it whose end the watermark has not yet passed.
//! The engine instead aggregates each row once into a pane and merges panes
//! when a window closes; both must give the same rows.

use std::collections::HashMap;

use arrow::array::AsArray;
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use eddy::RunOptions;
use eddy::connectors::nexmark::{NexmarkConfig, NexmarkGenerator, NexmarkKind};

const EVENTS: u64 = 200_000;
const DELAY: i64 = 4_000;

type Table = HashMap<(i64, i64), (i64, i64, i64, i64)>;

fn engine(slide: i64, size: i64, max_delay: i64) -> (Table, u64) {
    let sql = format!(
        "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '{DELAY}' MILLISECOND)
         WITH (connector = 'nexmark', events = '{EVENTS}', seed = '3', out_of_order = '0.05', max_delay_ms = '{max_delay}');
         SELECT auction, window_start, COUNT(*) AS n, SUM(price) AS s, MIN(price) AS lo, MAX(price) AS hi
         FROM HOP(bids, date_time, INTERVAL '{slide}' MILLISECOND, INTERVAL '{size}' MILLISECOND)
         GROUP BY auction, window_start, window_end"
    );
    let script = eddy::plan_script(&sql).expect("plans");
    let (batches, stats) = eddy::collect(
        &script.queries[0],
        &RunOptions {
            batch_size: 1024,
            ..RunOptions::default()
        },
    )
    .expect("runs");
    let mut t = Table::new();
    for b in &batches {
        let c = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
        let ws = b.column(1).as_primitive::<TimestampMillisecondType>();
        let (a, n, s, lo, hi) = (c(0), c(2), c(3), c(4), c(5));
        for r in 0..b.num_rows() {
            let prev = t.insert(
                (a.value(r), ws.value(r)),
                (n.value(r), s.value(r), lo.value(r), hi.value(r)),
            );
            assert!(prev.is_none(), "window emitted twice");
        }
    }
    (t, stats.late_dropped)
}

fn reference(slide: i64, size: i64, max_delay: i64) -> (Table, u64) {
    let config = NexmarkConfig {
        events: Some(EVENTS),
        seed: 3,
        out_of_order: 0.05,
        max_delay_ms: max_delay,
        ..Default::default()
    };
    let mut g = NexmarkGenerator::new(config, NexmarkKind::Bid);
    let mut t = Table::new();
    let mut wm = i64::MIN;
    let mut late = 0;
    while let Some(b) = g.next_batch(1024) {
        let a = b.column(0).as_primitive::<Int64Type>();
        let p = b.column(2).as_primitive::<Int64Type>();
        let ts = b.column(5).as_primitive::<TimestampMillisecondType>();
        let mut batch_max = i64::MIN;
        for r in 0..b.num_rows() {
            let time = ts.value(r);
            batch_max = batch_max.max(time);
            let mut added = false;
            // every window start s (a multiple of slide) with s <= time < s + size
            let mut s = time.div_euclid(slide) * slide;
            while s + size > time {
                if s + size > wm {
                    let e = t
                        .entry((a.value(r), s))
                        .or_insert((0, 0, i64::MAX, i64::MIN));
                    e.0 += 1;
                    e.1 += p.value(r);
                    e.2 = e.2.min(p.value(r));
                    e.3 = e.3.max(p.value(r));
                    added = true;
                }
                s -= slide;
            }
            late += u64::from(!added);
        }
        wm = wm.max(batch_max - DELAY);
    }
    (t, late)
}

fn check(slide: i64, size: i64, max_delay: i64) -> u64 {
    let (got, late_got) = engine(slide, size, max_delay);
    let (want, late_want) = reference(slide, size, max_delay);
    assert_eq!(
        late_got, late_want,
        "late rows for slide {slide} size {size}"
    );
    assert_eq!(
        got.len(),
        want.len(),
        "windows for slide {slide} size {size}"
    );
    for (k, v) in &want {
        assert_eq!(
            got.get(k),
            Some(v),
            "auction {} window {} (slide {slide}, size {size})",
            k.0,
            k.1
        );
    }
    late_want
}

#[test]
fn hop_with_size_a_multiple_of_slide() {
    assert_eq!(check(2_000, 10_000, 3_000), 0);
}

#[test]
fn hop_with_size_not_a_multiple_of_slide() {
    assert_eq!(check(4_000, 10_000, 3_000), 0);
    assert_eq!(check(3_000, 10_000, 1_000), 0);
}

#[test]
fn hop_with_late_rows_adds_them_to_the_windows_still_open() {
    assert!(check(2_000, 10_000, 20_000) > 0);
}
