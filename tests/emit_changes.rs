//! EMIT CHANGES rebuilt into a table equals EMIT FINAL on the same input:
//! applying `+I`/`+U` rows as inserts and `-U` rows as deletes (of one equal
//! row) leaves exactly the rows EMIT FINAL emits, for every window kind,
//! with late rows inside and beyond the allowed lateness, with one and with
//! four partition workers, and with small and large batches.

use std::collections::BTreeMap;

use eddy::RunOptions;

#[path = "support/lib.rs"]
#[allow(dead_code)]
mod support;

/// A multiset of rendered rows.
type Table = BTreeMap<String, i64>;

fn run(sql: &str, batch_size: usize, partitions: usize) -> (Vec<String>, Vec<String>) {
    let script = eddy::plan_script(sql).unwrap_or_else(|e| panic!("{e}\n{sql}"));
    let plan = &script.queries[0];
    let (batches, _) = eddy::collect(
        plan,
        &RunOptions {
            batch_size,
            partitions,
            ..RunOptions::default()
        },
    )
    .expect("runs");
    let text = support::format_rows(&plan.output_schema, &batches);
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap_or_default();
    (vec![header], lines.collect())
}

fn final_table(rows: &[String]) -> Table {
    let mut t = Table::new();
    for r in rows {
        *t.entry(r.clone()).or_default() += 1;
    }
    t
}

/// Applies a changelog whose first column is `_op`.
fn rebuild(rows: &[String]) -> Table {
    let mut t = Table::new();
    for r in rows {
        let (op, row) = r.split_once(" | ").expect("an _op column");
        let n = t.entry(row.to_string()).or_default();
        match op {
            "+I" | "+U" => *n += 1,
            "-U" | "-D" => *n -= 1,
            other => panic!("unknown op {other}"),
        }
        assert!(*n >= 0, "{r} withdraws a row that is not there");
    }
    t.retain(|_, n| *n > 0);
    t
}

fn check(streams: &str, select: &str) {
    let final_sql = format!("{streams};\n{select} EMIT FINAL");
    let changes_sql = format!("{streams};\n{select} EMIT CHANGES");
    for (batch, partitions) in [(1, 1), (7, 1), (1, 4), (64, 4)] {
        // the batch size decides which rows are late (the watermark moves per batch)
        let (_, expected) = run(&final_sql, batch, 1);
        let expected = final_table(&expected);
        assert!(!expected.is_empty(), "no rows from {select}");
        let (header, changes) = run(&changes_sql, batch, partitions);
        assert!(header[0].starts_with("_op VARCHAR | "), "{header:?}");
        assert_eq!(
            rebuild(&changes),
            expected,
            "{select}: batch {batch}, partitions {partitions}"
        );
        let (_, fin) = run(&final_sql, batch, partitions);
        assert_eq!(
            final_table(&fin),
            expected,
            "{select} EMIT FINAL: batch {batch}, partitions {partitions}"
        );
    }
}

const BIDS: &str = "CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl', allowed_lateness = '5 s')";

const CLICKS: &str =
    "CREATE STREAM clicks (user VARCHAR, t TIMESTAMP, WATERMARK FOR t AS t - INTERVAL '5' SECOND)
WITH (connector = 'file', path = 'tests/sql/data/clicks.jsonl')";

/// 20,000 generated bids, 5% of them up to 3 s out of order, a 1 s delay
/// and 1 s of allowed lateness: some rows are late but accepted, some too late.
const NEXMARK: &str =
    "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
WITH (connector = 'nexmark', events = '20000', seed = '11', out_of_order = '0.05',
      max_delay_ms = '3000', allowed_lateness = '1 s')";

#[test]
fn tumbling_changes_rebuild_the_final_table() {
    check(
        BIDS,
        "SELECT auction, window_start, COUNT(*) AS n, SUM(price) AS s, MAX(price) AS hi
         FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) GROUP BY auction, window_start, window_end",
    );
    check(
        NEXMARK,
        "SELECT auction, window_start, COUNT(*) AS n, AVG(price) AS a, MIN(bidder) AS b
         FROM TUMBLE(bids, date_time, INTERVAL '2' SECOND) GROUP BY auction, window_start, window_end",
    );
}

#[test]
fn hopping_changes_rebuild_the_final_table() {
    check(
        BIDS,
        "SELECT window_start, window_end, COUNT(*) AS n, SUM(price) AS s
         FROM HOP(bids, date_time, INTERVAL '4' SECOND, INTERVAL '10' SECOND) GROUP BY window_start, window_end",
    );
    check(
        NEXMARK,
        "SELECT auction, window_start, COUNT(*) AS n, MAX(price) AS hi
         FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '5' SECOND) GROUP BY auction, window_start, window_end",
    );
}

#[test]
fn session_changes_rebuild_the_final_table() {
    check(
        CLICKS,
        "SELECT user, window_start, window_end, COUNT(*) AS n
         FROM SESSION(clicks, t, INTERVAL '3' SECOND) GROUP BY user, window_start, window_end",
    );
    check(
        NEXMARK,
        "SELECT bidder, window_start, window_end, COUNT(*) AS n, SUM(price) AS s
         FROM SESSION(bids, date_time, INTERVAL '500' MILLISECOND) GROUP BY bidder, window_start, window_end",
    );
}

#[test]
fn global_changes_rebuild_the_final_table() {
    check(
        BIDS,
        "SELECT channel, COUNT(*) AS n, MAX(price) AS hi FROM bids GROUP BY channel",
    );
    check(
        NEXMARK,
        "SELECT auction % 10 AS bucket, COUNT(*) AS n, COUNT(DISTINCT bidder) AS bidders FROM bids GROUP BY auction % 10",
    );
    check(NEXMARK, "SELECT COUNT(*) AS n, SUM(price) AS s FROM bids");
}
