//! Session windows against a naive reference that keeps every session's raw
//! values and merges sessions by re-collecting them; the engine instead
//! merges partial aggregates. Late rows (whose own interval the watermark has
//! passed) are dropped by both; a row bridging two open sessions merges them.

use std::collections::{BTreeMap, HashMap};

use arrow::array::AsArray;
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use eddy::RunOptions;
use eddy::connectors::nexmark::{NexmarkConfig, NexmarkGenerator, NexmarkKind};

const EVENTS: u64 = 100_000;
const DELAY: i64 = 4_000;
const BATCH: usize = 512;

type Table = HashMap<(i64, i64, i64), (i64, i64, i64, i64)>;

fn engine(gap: i64, max_delay: i64, rate: u64) -> (Table, u64) {
    let sql = format!(
        "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '{DELAY}' MILLISECOND)
         WITH (connector = 'nexmark', events = '{EVENTS}', rate = '{rate}', seed = '5',
               out_of_order = '0.05', max_delay_ms = '{max_delay}');
         SELECT bidder, window_start, window_end, COUNT(*) AS n, SUM(price) AS s, MIN(price) AS lo, MAX(price) AS hi
         FROM SESSION(bids, date_time, INTERVAL '{gap}' MILLISECOND)
         GROUP BY bidder, window_start, window_end"
    );
    let script = eddy::plan_script(&sql).expect("plans");
    let (batches, stats) = eddy::collect(
        &script.queries[0],
        &RunOptions {
            batch_size: BATCH,
            ..RunOptions::default()
        },
    )
    .expect("runs");
    let mut t = Table::new();
    for b in &batches {
        let c = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
        let ws = b.column(1).as_primitive::<TimestampMillisecondType>();
        let we = b.column(2).as_primitive::<TimestampMillisecondType>();
        let (k, n, s, lo, hi) = (c(0), c(3), c(4), c(5), c(6));
        for r in 0..b.num_rows() {
            let prev = t.insert(
                (k.value(r), ws.value(r), we.value(r)),
                (n.value(r), s.value(r), lo.value(r), hi.value(r)),
            );
            assert!(prev.is_none(), "session emitted twice");
        }
    }
    (t, stats.late_dropped)
}

/// Per key: sessions by start → (end, raw prices).
type Open = HashMap<i64, BTreeMap<i64, (i64, Vec<i64>)>>;

fn close(open: &mut Open, wm: i64, out: &mut Table) {
    for (k, sessions) in open.iter_mut() {
        sessions.retain(|&start, (end, prices)| {
            if *end > wm {
                return true;
            }
            let n = prices.len() as i64;
            let (lo, hi) = (
                *prices.iter().min().unwrap_or(&0),
                *prices.iter().max().unwrap_or(&0),
            );
            out.insert((*k, start, *end), (n, prices.iter().sum(), lo, hi));
            false
        });
    }
}

fn reference(gap: i64, max_delay: i64, rate: u64) -> (Table, u64) {
    let config = NexmarkConfig {
        events: Some(EVENTS),
        rate,
        seed: 5,
        out_of_order: 0.05,
        max_delay_ms: max_delay,
        ..Default::default()
    };
    let mut g = NexmarkGenerator::new(config, NexmarkKind::Bid);
    let (mut open, mut out): (Open, Table) = (HashMap::new(), HashMap::new());
    let (mut wm, mut late) = (i64::MIN, 0);
    while let Some(b) = g.next_batch(BATCH) {
        let k = b.column(1).as_primitive::<Int64Type>();
        let p = b.column(2).as_primitive::<Int64Type>();
        let ts = b.column(5).as_primitive::<TimestampMillisecondType>();
        let mut batch_max = i64::MIN;
        for r in 0..b.num_rows() {
            let t = ts.value(r);
            batch_max = batch_max.max(t);
            if t + gap <= wm {
                late += 1;
                continue;
            }
            let sessions = open.entry(k.value(r)).or_default();
            let (mut start, mut end, mut prices) = (t, t + gap, vec![p.value(r)]);
            // absorb every session that overlaps or touches [start, end)
            loop {
                let hit = sessions
                    .iter()
                    .find(|(s, (e, _))| **s <= end && start <= *e)
                    .map(|(s, _)| *s);
                let Some(s) = hit else { break };
                let (e, mut ps) = sessions.remove(&s).unwrap_or_default();
                start = start.min(s);
                end = end.max(e);
                prices.append(&mut ps);
            }
            sessions.insert(start, (end, prices));
        }
        wm = wm.max(batch_max - DELAY);
        close(&mut open, wm, &mut out);
    }
    close(&mut open, i64::MAX, &mut out);
    (out, late)
}

fn check(gap: i64, max_delay: i64, rate: u64) -> (usize, u64) {
    let (got, late_got) = engine(gap, max_delay, rate);
    let (want, late_want) = reference(gap, max_delay, rate);
    assert_eq!(late_got, late_want, "late rows");
    assert_eq!(got.len(), want.len(), "sessions");
    for (k, v) in &want {
        assert_eq!(
            got.get(k),
            Some(v),
            "bidder {} session [{}, {})",
            k.0,
            k.1,
            k.2
        );
    }
    (want.len(), late_want)
}

#[test]
fn sessions_within_the_watermark_delay() {
    let (sessions, late) = check(2_000, 3_000, 1_000);
    assert!(sessions > 1_000, "{sessions} sessions");
    assert_eq!(late, 0);
}

#[test]
fn late_rows_bridge_and_merge_open_sessions_or_are_dropped() {
    let (_, late) = check(1_000, 8_000, 2_000);
    assert!(late > 0, "some rows are late");
}
