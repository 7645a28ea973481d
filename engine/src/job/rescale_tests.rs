//! State moved to another number of workers: a query run by one pipeline
//! gives the same rows (as a multiset: workers interleave) as the query run
//! by 2 workers, stopped at a random barrier, its states split among 3
//! ([`Operator::split_state`], owned keys by the router's key groups), run
//! on, split among 1 at another barrier and finished. Rows are routed and
//! watermarks broadcast as the runtime does. Over seeded inputs with
//! out-of-order and late rows.
//!
//! [`Operator::split_state`]: crate::exec::operator::Operator::split_state

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::exec::exchange::{Router, key_groups, worker_of};
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{CheckpointBarrier, Message, OperatorState};
use crate::exec::pipeline::Pipeline;
use crate::plan::physical::{PhysicalNode, PhysicalPlan};

const STREAM: &str = "CREATE STREAM bids (auction BIGINT, bidder BIGINT, price DOUBLE,
      date_time TIMESTAMP, WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND)
    WITH (connector = 'file', path = 'never-read.jsonl', allowed_lateness = '1 s');";

/// ~500 bids in batches of 1 to 30 rows over 9 auctions, event time ~120 ms
/// a row, one in eight up to 4 s behind (some late), some prices NULL.
fn bids(seed: u64) -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("bidder", DataType::Int64, true),
        Field::new("price", DataType::Float64, true),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
    ]));
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut t, mut left, mut out) = (1_767_225_600_000i64, 500u64, Vec::new());
    while left > 0 {
        let n = (1 + next() % 30).min(left);
        left -= n;
        let (mut a, mut b, mut p, mut ts) = (vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            t += (next() % 240) as i64;
            let behind = if next() % 8 == 0 {
                (next() % 4_000) as i64
            } else {
                0
            };
            a.push((next() % 9) as i64);
            b.push((next() % 30) as i64);
            p.push((next() % 10 != 0).then(|| (next() % 10_000) as f64 / 10.0));
            ts.push(t - behind);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(a)),
            Arc::new(Int64Array::from(b)),
            Arc::new(Float64Array::from(p)),
            Arc::new(TimestampMillisecondArray::from(ts)),
        ];
        out.push(RecordBatch::try_new(schema.clone(), columns).expect("a batch"));
    }
    out
}

/// Every output row as text, sorted.
fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let formatters: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formats"))
            .collect();
        for r in 0..b.num_rows() {
            let row: Vec<String> = formatters.iter().map(|f| f.value(r).to_string()).collect();
            out.push(row.join(" "));
        }
    }
    out.sort_unstable();
    out
}

fn batches(out: Vec<Message>, into: &mut Vec<RecordBatch>) {
    into.extend(out.into_iter().filter_map(|m| match m {
        Message::Batch(b) => Some(b),
        _ => None,
    }));
}

/// The query's workers: built from the nodes from the exchange on.
struct Workers<'a> {
    plan: &'a PhysicalPlan,
    at: usize,
    router: Router,
    pipelines: Vec<Pipeline>,
}

impl<'a> Workers<'a> {
    fn new(plan: &'a PhysicalPlan, n: usize) -> Self {
        let at = plan.exchange().expect("the query has an exchange");
        let keys = match &plan.nodes[at] {
            PhysicalNode::Exchange(x) => x.keys.clone(),
            _ => unreachable!(),
        };
        let metrics = Arc::new(QueryMetrics::default());
        let input = plan.node_schemas()[at - 1].clone();
        let pipelines = (0..n)
            .map(|i| {
                Pipeline::build_nodes(&input, &plan.nodes[at..], at, &metrics, Some(i), None)
                    .expect("builds")
            })
            .collect();
        Self {
            plan,
            at,
            router: Router::new(&keys, n).expect("router"),
            pipelines,
        }
    }

    fn push(&mut self, m: Message, out: &mut Vec<RecordBatch>) {
        match m {
            Message::Batch(b) => {
                for (w, rows) in self
                    .router
                    .route(&b)
                    .expect("routes")
                    .into_iter()
                    .enumerate()
                {
                    if rows.is_empty() {
                        continue;
                    }
                    let part = take_record_batch(&b, &UInt32Array::from(rows)).expect("takes");
                    batches(
                        self.pipelines[w].push(Message::Batch(part)).expect("runs"),
                        out,
                    );
                }
            }
            Message::Watermark(_) | Message::End => {
                for p in &mut self.pipelines {
                    batches(p.push(m.clone()).expect("runs"), out);
                }
            }
            _ => {}
        }
    }

    /// Stops at barrier `id` and hands the states to `n` new workers.
    fn rescale(self, id: u64, n: usize, out: &mut Vec<RecordBatch>) -> (Self, usize) {
        let mut old: Vec<Vec<OperatorState>> = Vec::new();
        for mut p in self.pipelines {
            batches(
                p.push(Message::Barrier(CheckpointBarrier::new(id)))
                    .expect("passes"),
                out,
            );
            old.push(p.snapshot().expect("snapshots"));
        }
        let held = old.iter().flatten().map(OperatorState::rows).sum();
        let mut next = Workers::new(self.plan, n);
        assert_eq!(next.at, self.at);
        for (j, p) in next.pipelines.iter_mut().enumerate() {
            let owns = |keys: &[ArrayRef]| {
                Ok(key_groups(keys)?
                    .into_iter()
                    .map(|g| worker_of(g, n) == j)
                    .collect())
            };
            let states = (0..p.operators())
                .map(|i| {
                    let parts: Vec<OperatorState> = old.iter().map(|w| w[i].clone()).collect();
                    if parts.iter().all(|s| s.parts.is_empty()) {
                        return OperatorState::default(); // stateless
                    }
                    assert!(p.node_ids()[i].1, "{} cannot move", p.operator_name(i));
                    p.split_state(i, parts, &owns).expect("splits")
                })
                .collect();
            p.restore(states).expect("restores");
        }
        (next, held)
    }
}

/// The property, for `select` over a dozen seeds.
fn same_rows_on_other_workers(select: &str, udfs: Vec<Arc<crate::udf::UdfModule>>) {
    let script = crate::plan_script_with_udfs(&format!("{STREAM}\n{select}"), udfs)
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = &script.queries[0];
    let mut held = 0;
    for seed in 1..=12u64 {
        let input = bids(seed);
        let metrics = Arc::new(QueryMetrics::default());
        let mut straight = Vec::new();
        let mut p = Pipeline::build(plan, &metrics).expect("builds");
        for b in &input {
            batches(
                p.push(Message::Batch(b.clone())).expect("runs"),
                &mut straight,
            );
        }
        batches(p.close().expect("closes"), &mut straight);

        // the front (watermarks, stateless operators) stays; workers move
        let at = plan.exchange().expect("an exchange");
        let mut front = Pipeline::build_nodes(
            &plan.source.schema,
            &plan.nodes[..at],
            0,
            &metrics,
            None,
            None,
        )
        .expect("builds");
        let mut workers = Workers::new(plan, 2);
        let mut moved = Vec::new();
        let (first, second) = (
            input.len() / 4 + (seed as usize * 7) % (input.len() / 4),
            input.len() / 2 + (seed as usize * 13) % (input.len() / 3),
        );
        for (i, b) in input.iter().enumerate() {
            for m in front.push(Message::Batch(b.clone())).expect("runs") {
                workers.push(m, &mut moved);
            }
            if i == first || i == second {
                let n = if i == first { 3 } else { 1 };
                let (w, h) = workers.rescale(i as u64 + 1, n, &mut moved);
                workers = w;
                held = held.max(h);
            }
        }
        for m in front.close().expect("closes") {
            workers.push(m, &mut moved);
        }
        workers.push(Message::End, &mut moved);
        let (straight, moved) = (lines(&straight), lines(&moved));
        assert!(straight.len() > 1, "seed {seed}: no rows");
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter()
                .filter(|l| !b.contains(l))
                .take(5)
                .cloned()
                .collect()
        };
        assert!(
            straight == moved,
            "seed {seed}: {} rows straight, {} moved; only straight: {:#?}; only moved: {:#?}",
            straight.len(),
            moved.len(),
            only(&straight, &moved),
            only(&moved, &straight)
        );
    }
    assert!(held > 0, "no state was moved: the test proves nothing");
}

const AGGS: &str = "COUNT(*) AS n, SUM(price) AS total, MIN(price) AS lo, MAX(price) AS hi,
    AVG(price) AS mean, COUNT(DISTINCT bidder) AS bidders";

#[test]
fn windows_move_to_other_workers() {
    for window in [
        "TUMBLE(bids, date_time, INTERVAL '5' SECOND)",
        "HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '6' SECOND)",
        "SESSION(bids, date_time, INTERVAL '1' SECOND)",
    ] {
        for emit in ["", "EMIT CHANGES"] {
            same_rows_on_other_workers(
                &format!(
                    "SELECT auction, window_start, window_end, {AGGS} FROM {window}
                     GROUP BY auction, window_start, window_end {emit}"
                ),
                vec![],
            );
        }
    }
}

#[test]
fn group_by_moves_to_other_workers() {
    same_rows_on_other_workers(
        &format!("SELECT auction, {AGGS} FROM bids GROUP BY auction"),
        vec![],
    );
}

#[test]
fn row_windows_move_to_other_workers() {
    let stats =
        crate::udf::examples::examples_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
            .and_then(|root| crate::udf::examples::build_examples(&root).ok())
            .map(|dir| std::fs::read(dir.join("stats.wasm")).expect("stats.wasm"))
            .expect("examples-udf/ builds");
    let stats = crate::udf::UdfModule::load("stats", &stats, crate::udf::UdfLimits::default())
        .expect("loads");
    for frame in [
        "ROWS BETWEEN 3 PRECEDING AND CURRENT ROW",
        "RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW",
    ] {
        let w = format!("OVER (PARTITION BY auction ORDER BY date_time {frame})");
        // median slides in the guest, p90 recomputes each frame
        same_rows_on_other_workers(
            &format!(
                "SELECT auction, bidder, price, date_time, COUNT(*) {w} AS n, SUM(price) {w} AS s,
                        AVG(price) {w} AS mean, MIN(price) {w} AS lo, MAX(bidder) {w} AS hi,
                        median(price) {w} AS med, p90(price) {w} AS p90
                 FROM bids"
            ),
            vec![stats.clone()],
        );
    }
}

#[test]
fn rankings_kept_up_to_date_move_to_other_workers() {
    same_rows_on_other_workers(
        "SELECT * FROM (SELECT auction, bidder, price, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS r FROM bids) WHERE r <= 2",
        vec![],
    );
}

#[test]
fn idle_state_under_a_ttl_moves_to_other_workers() {
    // the groups' and partitions' stamps move with their keys, the sweep
    // clock to every worker
    for select in [
        "SELECT bidder, COUNT(*) AS n, SUM(price) AS total FROM bids GROUP BY bidder",
        "SELECT * FROM (SELECT bidder, price, ROW_NUMBER() OVER (PARTITION BY bidder ORDER BY price DESC) AS r FROM bids) WHERE r <= 2",
    ] {
        same_rows_on_other_workers(&format!("SET 'state.ttl' = '3s';\n{select}"), vec![]);
    }
}
