//! Operator state hooks: a query run straight through gives exactly the rows
//! (and dead letters) of the same query stopped at random checkpoint
//! barriers, snapshotted, restored into fresh operators built from the plan,
//! and continued. One property test per stateful operator, each over a
//! dozen seeded inputs with out-of-order and late rows, barriers at random
//! batches. Every snapshot goes through the durable checkpoint store (Arrow
//! IPC files, manifest last) and is read back by a store opened afresh.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use eddy::checkpoint::Manifest;
use eddy::checkpoint::states::{read_states, write_states};
use eddy::checkpoint::store::CheckpointStore;
use eddy::exec::metrics::QueryMetrics;
use eddy::exec::operator::{CheckpointBarrier, Message, OperatorState};
use eddy::exec::pipeline::Pipeline;
use eddy::udf::UdfModule;

#[path = "support/lib.rs"]
#[allow(dead_code)]
mod support;

const STREAM: &str = "CREATE STREAM bids (auction BIGINT, bidder BIGINT, price DOUBLE,
      channel VARCHAR, date_time TIMESTAMP,
      WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND)
    WITH (connector = 'file', path = 'never-read.jsonl', allowed_lateness = '3 s',
          late_policy = 'dead_letter', 'dead_letter.path' = 'never-written.jsonl');";

/// A small xorshift generator: the inputs and barrier points of a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// ~400 bids in batches of 1 to 24 rows; event time moves on ~150 ms a
/// row, one row in eight is up to 8 s behind and one in sixteen up to 25 s
/// (some too late even for the allowed lateness), some prices are NULL.
fn bids(seed: u64) -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("bidder", DataType::Int64, true),
        Field::new("price", DataType::Float64, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
    ]));
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut t = 1_767_225_600_000i64;
    let mut out = Vec::new();
    let mut left = 400;
    while left > 0 {
        let n = (1 + rng.next() % 24).min(left) as usize;
        left -= n as u64;
        let (mut a, mut b, mut p, mut c, mut ts) = (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            t += (rng.next() % 300) as i64;
            let behind = match rng.next() % 16 {
                0 | 1 => (rng.next() % 8_000) as i64,
                2 => (rng.next() % 25_000) as i64,
                _ => 0,
            };
            a.push((rng.next() % 6) as i64);
            b.push((rng.next() % 40) as i64);
            p.push((!rng.next().is_multiple_of(10)).then(|| (rng.next() % 10_000) as f64 / 10.0));
            c.push(["apple", "google", "baidu"][(rng.next() % 3) as usize]);
            ts.push(t - behind);
        }
        out.push(
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(a)),
                    Arc::new(Int64Array::from(b)),
                    Arc::new(Float64Array::from(p)),
                    Arc::new(StringArray::from(c)),
                    Arc::new(TimestampMillisecondArray::from(ts)),
                ],
            )
            .expect("a batch"),
        );
    }
    out
}

/// What a run produced: its rows as text, its dead letters (as written),
/// and the most state rows a snapshot held (0 for a straight run).
struct Run {
    rows: String,
    dead_letters: Vec<String>,
    held: usize,
}

/// Through the durable store: the snapshot is written as a checkpoint (a
/// file per part, then the manifest), and the restore reads the newest
/// complete checkpoint back through a store opened afresh, as after a restart.
fn through_the_store(
    dir: &std::path::Path,
    id: u64,
    states: &[OperatorState],
    operators: usize,
) -> Vec<OperatorState> {
    let store = CheckpointStore::open(dir.to_str().unwrap(), "q").expect("store");
    let mut manifest = Manifest::new(id, "fp");
    manifest.files = write_states(&store, id, "w0", states).expect("writes");
    store.commit(&manifest).expect("commits");
    store.prune(2).expect("prunes");
    drop(store);
    let store = CheckpointStore::open(dir.to_str().unwrap(), "q").expect("store");
    let latest = store.latest().expect("reads").expect("a checkpoint");
    assert_eq!(latest.id, id);
    read_states(&store, &latest, "w0", operators).expect("reads back")
}

fn run(plan: &eddy::PhysicalPlan, input: &[RecordBatch], barriers: Option<u64>) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let build = || Pipeline::build(plan, &Arc::new(QueryMetrics::default())).expect("builds");
    let mut p = build();
    let (mut rows, mut dead_letters, mut held) = (Vec::new(), Vec::new(), 0);
    let mut keep = |out: Vec<Message>| {
        for m in out {
            match m {
                Message::Batch(b) => rows.push(b),
                Message::DeadLetter(d) => dead_letters.extend(d.to_json_lines("bids")),
                _ => {}
            }
        }
    };
    let mut rng = barriers.map(Rng);
    for (i, b) in input.iter().enumerate() {
        keep(p.push(Message::Batch(b.clone())).expect("runs"));
        if rng.as_mut().is_some_and(|r| r.next() % 3 == 0) {
            keep(
                p.push(Message::Barrier(CheckpointBarrier::new(i as u64)))
                    .expect("the barrier passes"),
            );
            let state = p.snapshot().expect("snapshots");
            held = held.max(state.iter().map(|s| s.rows()).sum());
            let state = through_the_store(dir.path(), i as u64 + 1, &state, p.operators());
            p = build();
            p.restore(state).expect("restores");
        }
    }
    keep(p.close().expect("closes"));
    Run {
        rows: support::format_rows(&plan.output_schema, &rows),
        dead_letters,
        held,
    }
}

/// The property: for every seed, straight = split at random barriers.
fn same_output_across_restores(select: &str, udfs: Vec<Arc<UdfModule>>) {
    same_output(select, udfs, true)
}

/// The property; `windowed`: some rows must come too late for their window.
fn same_output(select: &str, udfs: Vec<Arc<UdfModule>>, windowed: bool) {
    let script = eddy::plan_script_with_udfs(&format!("{STREAM}\n{select}"), udfs)
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = &script.queries[0];
    let (mut held, mut late) = (0, 0);
    for seed in 1..=12 {
        let input = bids(seed);
        let straight = run(plan, &input, None);
        let split = run(plan, &input, Some(seed * 7919));
        assert!(
            straight.rows.lines().count() > 1,
            "seed {seed}: the query produced no rows"
        );
        assert_eq!(straight.rows, split.rows, "seed {seed}");
        assert_eq!(straight.dead_letters, split.dead_letters, "seed {seed}");
        held = held.max(split.held);
        late += straight.dead_letters.len();
    }
    assert!(
        held > 0,
        "no snapshot held any state: the test proves nothing"
    );
    assert!(
        !windowed || late > 0,
        "no row was too late: the clock's state went untested"
    );
}

const AGGS: &str = "COUNT(*) AS n, SUM(price) AS total, MIN(price) AS lo, MAX(price) AS hi,
    AVG(price) AS mean, COUNT(DISTINCT bidder) AS bidders";

#[test]
fn tumbling_windows_emit_final() {
    same_output_across_restores(
        &format!(
            "SELECT auction, window_start, {AGGS} FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
             GROUP BY auction, window_start, window_end"
        ),
        vec![],
    );
}

#[test]
fn tumbling_windows_emit_changes() {
    same_output_across_restores(
        &format!(
            "SELECT auction, window_start, {AGGS} FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
             GROUP BY auction, window_start, window_end EMIT CHANGES"
        ),
        vec![],
    );
}

#[test]
fn hopping_windows_emit_changes() {
    same_output_across_restores(
        &format!(
            "SELECT auction, window_start, {AGGS}
             FROM HOP(bids, date_time, INTERVAL '5' SECOND, INTERVAL '15' SECOND)
             GROUP BY auction, window_start, window_end EMIT CHANGES"
        ),
        vec![],
    );
}

#[test]
fn hopping_windows_emit_final_from_panes() {
    same_output_across_restores(
        &format!(
            "SELECT auction, window_start, {AGGS}
             FROM HOP(bids, date_time, INTERVAL '4' SECOND, INTERVAL '10' SECOND)
             GROUP BY auction, window_start, window_end"
        ),
        vec![],
    );
}

#[test]
fn session_windows_final_and_changes() {
    for emit in ["", "EMIT CHANGES"] {
        same_output_across_restores(
            &format!(
                "SELECT auction, window_start, window_end, {AGGS}
                 FROM SESSION(bids, date_time, INTERVAL '1' SECOND)
                 GROUP BY auction, window_start, window_end {emit}"
            ),
            vec![],
        );
    }
}

#[test]
fn row_windows_rows_and_range_frames() {
    for frame in [
        "ROWS BETWEEN 3 PRECEDING AND CURRENT ROW",
        "RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW",
    ] {
        let w = format!("OVER (PARTITION BY auction ORDER BY date_time {frame})");
        same_output_across_restores(
            &format!(
                "SELECT auction, bidder, price, date_time, COUNT(*) {w} AS n, COUNT(price) {w} AS c,
                        SUM(price) {w} AS s, SUM(bidder) {w} AS sb, AVG(price) {w} AS mean,
                        MIN(price) {w} AS lo, MAX(bidder) {w} AS hi
                 FROM bids"
            ),
            vec![],
        );
    }
}

#[test]
fn global_aggregates_changelog_and_final() {
    same_output(
        &format!("SELECT channel, {AGGS} FROM bids GROUP BY channel"),
        vec![],
        false,
    );
    same_output(
        &format!("SELECT channel, {AGGS} FROM bids GROUP BY channel EMIT FINAL"),
        vec![],
        false,
    );
}

#[test]
fn top_n_per_window() {
    same_output_across_restores(
        "SELECT * FROM (
           SELECT auction, window_end, COUNT(*) AS n,
                  ROW_NUMBER() OVER (PARTITION BY window_end ORDER BY COUNT(*) DESC) AS r
           FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
           GROUP BY auction, window_start, window_end)
         WHERE r <= 2",
        vec![],
    );
}

fn stats() -> Arc<UdfModule> {
    let bytes = std::fs::read(support::udf_wasm("stats")).expect("stats built");
    UdfModule::load("stats", &bytes, eddy::udf::UdfLimits::default()).expect("loads")
}

#[test]
fn webassembly_aggregates_in_row_windows_slide_and_recompute() {
    // weighted_avg and median retract (their frames slide in the guest);
    // p90 does not (each frame is aggregated afresh)
    let w =
        "OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 4 PRECEDING AND CURRENT ROW)";
    same_output_across_restores(
        &format!(
            "SELECT auction, price, date_time, weighted_avg(price, price) {w} AS wavg,
                    median(price) {w} AS med, p90(price) {w} AS p90, COUNT(*) {w} AS n
             FROM bids"
        ),
        vec![stats()],
    );
}

#[test]
fn a_webassembly_aggregate_in_tumbling_windows() {
    let stats = stats();
    same_output_across_restores(
        "SELECT auction, window_start, median(price) AS med, p90(price) AS p90, COUNT(*) AS n
         FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
         GROUP BY auction, window_start, window_end",
        vec![stats],
    );
}

/// Two inputs through a join: each input's batches go through its own
/// chain up to the join (watermarks), then into the join's pipeline on its
/// port, in a seeded interleaving; at random points the join's pipeline is
/// snapshotted, restored into a fresh one through the store, and continued.
fn run_join(
    plan: &eddy::PhysicalPlan,
    inputs: [&[RecordBatch]; 2],
    order: u64,
    barriers: Option<u64>,
) -> Run {
    use eddy::plan::physical::PhysicalNode;
    let dir = tempfile::tempdir().expect("temp dir");
    let metrics = Arc::new(QueryMetrics::default());
    let at = plan
        .nodes
        .iter()
        .position(|n| matches!(n, PhysicalNode::Join(_)))
        .expect("a join");
    let schemas = plan.node_schemas();
    let branch = &plan.branches[0];
    let mut prefixes = [
        Pipeline::build_nodes(
            &plan.source.schema,
            &plan.nodes[..at],
            0,
            &metrics,
            None,
            None,
        )
        .expect("left chain"),
        Pipeline::build_nodes(
            &branch.source.schema,
            &branch.nodes,
            0,
            &metrics,
            None,
            None,
        )
        .expect("right chain"),
    ];
    let join_input = schemas[at - 1].clone();
    let build = || {
        Pipeline::build_nodes(&join_input, &plan.nodes[at..], at, &metrics, None, None)
            .expect("the join builds")
    };
    let mut join = build();
    let (mut rows, mut held) = (Vec::new(), 0);
    let mut keep = |out: Vec<Message>| {
        for m in out {
            if let Message::Batch(b) = m {
                rows.push(b);
            }
        }
    };
    let mut pick = Rng(order | 1);
    let mut next = [0usize; 2];
    let mut rng = barriers.map(Rng);
    let mut step = 0u64;
    while next[0] < inputs[0].len() || next[1] < inputs[1].len() {
        let side = if next[0] >= inputs[0].len() {
            1
        } else if next[1] >= inputs[1].len() {
            0
        } else {
            (pick.next() % 2) as usize
        };
        let batch = inputs[side][next[side]].clone();
        next[side] += 1;
        for m in prefixes[side]
            .push(Message::Batch(batch))
            .expect("chain runs")
        {
            keep(join.push_from(side, m).expect("the join runs"));
        }
        step += 1;
        if rng.as_mut().is_some_and(|r| r.next() % 3 == 0) {
            keep(
                join.push(Message::Barrier(CheckpointBarrier::new(step)))
                    .expect("the barrier passes"),
            );
            let state = join.snapshot().expect("snapshots");
            held = held.max(state.iter().map(|s| s.rows()).sum());
            let state = through_the_store(dir.path(), step, &state, join.operators());
            join = build();
            join.restore(state).expect("restores");
        }
    }
    keep(join.close().expect("closes"));
    Run {
        rows: support::format_rows(&plan.output_schema, &rows),
        dead_letters: Vec::new(),
        held,
    }
}

#[test]
fn joins_interval_window_and_regular() {
    let second = STREAM.replace("CREATE STREAM bids", "CREATE STREAM offers");
    for select in [
        // interval, inner and outer
        "SELECT a.auction, a.bidder, b.bidder AS other, b.price FROM bids a JOIN offers b
           ON a.auction = b.auction AND b.date_time BETWEEN a.date_time - INTERVAL '1' SECOND AND a.date_time + INTERVAL '2' SECOND",
        "SELECT a.auction, a.bidder, b.bidder AS other FROM bids a FULL JOIN offers b
           ON a.auction = b.auction AND b.date_time BETWEEN a.date_time AND a.date_time + INTERVAL '1' SECOND",
        // window results joined on their windows
        "SELECT p.auction, p.window_start, p.n, q.n AS m FROM
           (SELECT auction, window_start, window_end, COUNT(*) AS n FROM TUMBLE(bids, date_time, INTERVAL '5' SECOND) GROUP BY auction, window_start, window_end) p
           LEFT JOIN (SELECT auction, window_start, window_end, COUNT(*) AS n FROM TUMBLE(offers, date_time, INTERVAL '5' SECOND) GROUP BY auction, window_start, window_end) q
           ON p.auction = q.auction AND p.window_end = q.window_end",
        // kept forever
        "SELECT a.auction, a.price, b.price AS other FROM bids a JOIN offers b ON a.auction = b.auction AND a.bidder = b.bidder",
        // changelogs: a changelog joined, an outer join kept up to date,
        // two changelogs in a FULL join with a condition on both
        "SELECT c.auction, c.n, b.bidder FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction) c
           JOIN offers b ON c.auction = b.auction AND b.bidder < 3",
        "SELECT a.auction, a.bidder, b.price FROM bids a LEFT JOIN offers b ON a.auction = b.auction AND a.bidder = b.bidder",
        "SELECT x.bidder, x.n, y.top FROM (SELECT bidder, COUNT(*) AS n FROM bids GROUP BY bidder) x
           FULL JOIN (SELECT bidder, MAX(price) AS top FROM offers GROUP BY bidder) y
           ON x.bidder = y.bidder AND y.top > x.n * 50",
        // a lookup join: the bids wait (in the snapshot) until the table is read
        "SELECT a.auction, a.price, b.bidder AS other FROM bids a LEFT JOIN offers FOR SYSTEM_TIME AS OF PROCTIME() AS b ON a.auction = b.auction AND a.bidder = b.bidder",
    ] {
        let script = eddy::plan_script(&format!("{STREAM}\n{second}\n{select}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let plan = &script.queries[0];
        let mut held = 0;
        for seed in 1..=8 {
            let (left, right) = (bids(seed), bids(seed + 1000));
            let straight = run_join(plan, [&left, &right], seed, None);
            let split = run_join(plan, [&left, &right], seed, Some(seed * 7919));
            assert!(
                straight.rows.lines().count() > 1,
                "seed {seed}: the join produced no rows\n{select}"
            );
            assert_eq!(straight.rows, split.rows, "seed {seed}\n{select}");
            held = held.max(split.held);
        }
        assert!(held > 0, "no snapshot held any state: {select}");
    }
}

#[test]
fn rankings_kept_up_to_date_and_aggregates_over_changelogs() {
    // deduplication and a top-N over an append-only stream (only the top kept)
    same_output(
        "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder ORDER BY date_time DESC) AS rn FROM bids) WHERE rn <= 1",
        vec![],
        false,
    );
    same_output(
        "SELECT * FROM (SELECT auction, bidder, price, RANK() OVER (PARTITION BY auction ORDER BY price DESC) AS r FROM bids) WHERE r <= 3",
        vec![],
        false,
    );
    // over an aggregate's changelog: every row kept, rows taken back
    same_output(
        "SELECT * FROM (SELECT channel, auction, n, ROW_NUMBER() OVER (PARTITION BY channel ORDER BY n DESC) AS r
           FROM (SELECT channel, auction, COUNT(*) AS n FROM bids GROUP BY channel, auction)) WHERE r <= 2",
        vec![],
        false,
    );
    same_output(
        "SELECT n, COUNT(*) AS auctions, SUM(total) AS s, AVG(total) AS a
         FROM (SELECT auction, COUNT(*) AS n, SUM(price) AS total FROM bids GROUP BY auction) GROUP BY n",
        vec![],
        false,
    );
}

#[test]
fn idle_state_dropped_by_a_ttl() {
    // a bidder bids every ~6 s of event time: many groups and partitions
    // expire and start over, and the stamps and the sweep clock must
    // survive the restores for the changelog to be the same
    for select in [
        "SELECT bidder, COUNT(*) AS n, SUM(price) AS total FROM bids GROUP BY bidder",
        "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder ORDER BY price DESC) AS rn FROM bids) WHERE rn <= 2",
        "SELECT n, COUNT(*) AS bidders FROM (SELECT bidder, COUNT(*) AS n FROM bids GROUP BY bidder) GROUP BY n",
    ] {
        same_output(&format!("SET 'state.ttl' = '3s';\n{select}"), vec![], false);
    }
}
