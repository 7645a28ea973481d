//! `upsert-kafka`: a changelog written as the latest row per key. What the
//! topic says, applied in order (a record sets its key, a tombstone deletes
//! it), must equal the final result computed here from the events; keys
//! whose rows were only taken back must be deleted.

use std::collections::BTreeMap;
use std::time::Duration;

use eddy_suite::kafka::{Broker, Record, topic_name};

use super::{PARTITIONS, events, stream_sql};

/// The topic applied as a table: key → value, tombstones deleting; and how
/// many tombstones it had.
fn applied(records: &[Record]) -> (BTreeMap<String, serde_json::Value>, usize) {
    let mut table = BTreeMap::new();
    let mut tombstones = 0;
    // one key's records are in one partition, in order
    for r in records {
        let key = r.key.clone().expect("every upsert record has a key");
        if r.tombstone {
            tombstones += 1;
            table.remove(&key);
        } else {
            table.insert(key, serde_json::from_str(&r.value).expect("a JSON value"));
        }
    }
    (table, tombstones)
}

fn run(broker: &Broker, name: &str, n: i64, sink: &str, query: &str) -> Vec<Record> {
    let input = topic_name(&format!("{name}-in"));
    let output = topic_name(&format!("{name}-out"));
    broker.create_topic(&input, PARTITIONS);
    broker.create_topic(&output, 3);
    broker.produce(&input, &events(0, n));
    let sql = format!(
        "{}
         {}
         INSERT INTO latest {query};",
        stream_sql(
            broker,
            &input,
            &format!("{name}-upsert"),
            // small batches: rows are updated and taken back batch after batch
            ", 'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset', 'consumer.batch_size' = '50'"
        ),
        sink.replace("{topic}", &output)
            .replace("{bootstrap}", &broker.bootstrap()),
    );
    let script = eddy::plan_script(&sql).unwrap_or_else(|e| panic!("{e}"));
    let stats = eddy::JobManager::new()
        .submit(eddy::JobSpec::new("upsert", script.queries[0].clone()))
        .expect("starts")
        .wait()
        .expect("runs");
    assert_eq!(stats.records_in, n as u64);
    broker.read_topic(&output, usize::MAX, Duration::from_secs(30))
}

fn upserts_by_key_and_deletes_with_tombstones(broker: Broker, name: &str) {
    let n = 1_000;
    // the count and the largest id per k (i % 7), keyed by k as JSON
    let records = run(
        &broker,
        &format!("{name}-agg"),
        n,
        "CREATE STREAM latest (k BIGINT, n BIGINT, max_id BIGINT, PRIMARY KEY (k) NOT ENFORCED)
           WITH (connector = 'upsert-kafka', topic = '{topic}',
                 'properties.bootstrap.servers' = '{bootstrap}');",
        "SELECT k, COUNT(*) AS n, MAX(id) AS max_id FROM events GROUP BY k",
    );
    let (table, _) = applied(&records);
    let mut expected = BTreeMap::new();
    for i in 0..n {
        let e = expected.entry(i % 7).or_insert((0i64, 0i64));
        e.0 += 1;
        e.1 = e.1.max(i);
    }
    let got: BTreeMap<i64, (i64, i64)> = table
        .iter()
        .map(|(key, v)| {
            let k: serde_json::Value = serde_json::from_str(key).expect("a JSON key");
            assert_eq!(k["k"], v["k"], "the key is the row's k");
            assert!(v.get("_op").is_none(), "no _op in an upsert value: {v}");
            let int = |f: &str| v[f].as_i64().expect(f);
            (int("k"), (int("n"), int("max_id")))
        })
        .collect();
    assert_eq!(got, expected);
    assert!(
        records.len() > expected.len(),
        "updates were written: {}",
        records.len()
    );

    // how many k have each count: every count but the last is emptied as
    // the k move on, and must be deleted (raw keys, from 'key.fields')
    let records = run(
        &broker,
        &format!("{name}-agg2"),
        n,
        "CREATE STREAM latest WITH (connector = 'upsert-kafka', topic = '{topic}',
           'properties.bootstrap.servers' = '{bootstrap}', 'key.fields' = 'n', 'key.format' = 'raw');",
        "SELECT n, COUNT(*) AS ks FROM (SELECT k, COUNT(*) AS n FROM events GROUP BY k) GROUP BY n",
    );
    let (table, tombstones) = applied(&records);
    let mut per_k: BTreeMap<i64, i64> = BTreeMap::new();
    for i in 0..n {
        *per_k.entry(i % 7).or_default() += 1;
    }
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for c in per_k.values() {
        *expected.entry(c.to_string()).or_default() += 1;
    }
    let got: BTreeMap<String, i64> = table
        .iter()
        .map(|(key, v)| (key.clone(), v["ks"].as_i64().expect("ks")))
        .collect();
    assert_eq!(got, expected);
    assert!(tombstones > 0, "no group was deleted");
}
on_both_brokers!(upsert_sink, upserts_by_key_and_deletes_with_tombstones);

#[test]
fn upsert_options_are_checked() {
    let err = |with: &str, cols: &str| {
        let sql = format!(
            "CREATE STREAM s {cols} WITH (connector = 'upsert-kafka', topic = 't',
               'properties.bootstrap.servers' = 'localhost:9092'{with});"
        );
        eddy::plan_script(&sql)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(
        err("", "(k BIGINT)").contains("needs the key"),
        "{}",
        err("", "(k BIGINT)")
    );
    assert!(
        err("", "(k BIGINT, PRIMARY KEY (j) NOT ENFORCED)")
            .contains("'j' is not a declared column")
    );
    assert!(err(", 'key.fields' = 'k'", "(k BIGINT, PRIMARY KEY (k))").contains("given twice"));
    assert!(
        err(
            ", 'key.format' = 'raw'",
            "(a BIGINT, b BIGINT, PRIMARY KEY (a, b) NOT ENFORCED)"
        )
        .contains("'key.format' = 'json'")
    );
    assert!(err(", 'key.fields' = 'x'", "(k BIGINT)").contains("key column 'x'"));
    assert_eq!(err("", "(k BIGINT PRIMARY KEY NOT ENFORCED, v DOUBLE)"), "");
}
