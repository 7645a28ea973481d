//! The Kafka connector end to end, against two real Kafka-protocol brokers:
//! librdkafka's in-process mock cluster and the external broker `.ci/run`
//! starts (`EDDY_TEST_KAFKA`; those tests are skipped, saying so, without it).
//!
//! Volumes stay small: the mock keeps only about 5 MiB per partition.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::{Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use eddy::{CollectSink, RunOptions};
use eddy_suite::kafka::{Broker, topic_name};

const PARTITIONS: i32 = 4;

/// The Apache Kafka image through testcontainers (`--features docker-kafka`).
#[cfg(feature = "docker-kafka")]
mod docker {
    use eddy_suite::kafka::Broker;
    use testcontainers_modules::kafka::apache;
    use testcontainers_modules::testcontainers::Container;
    use testcontainers_modules::testcontainers::runners::SyncRunner;

    /// A started broker; it stops when the container is dropped.
    pub fn apache_kafka() -> (Container<apache::Kafka>, Broker) {
        let node = apache::Kafka::default()
            .start()
            .expect("start the Apache Kafka container (is a Docker daemon running?)");
        let port = node
            .get_host_port_ipv4(apache::KAFKA_PORT)
            .expect("the broker's port");
        (node, Broker::External(format!("127.0.0.1:{port}")))
    }
}

/// Runs `body` against the mock and, when it is there, the external broker.
macro_rules! on_both_brokers {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn mock() {
                ($body)(Broker::mock(), concat!(stringify!($name), "-mock"));
            }

            #[test]
            fn external() {
                if let Some(b) = Broker::external(concat!(stringify!($name), "::external")) {
                    ($body)(b, concat!(stringify!($name), "-ext"));
                }
            }

            #[cfg(feature = "docker-kafka")]
            #[test]
            fn docker() {
                let (_container, b) = docker::apache_kafka();
                ($body)(b, concat!(stringify!($name), "-docker"));
            }
        }
    };
}

fn stream_sql(broker: &Broker, topic: &str, group: &str, extra: &str) -> String {
    format!(
        "CREATE STREAM events (id BIGINT, k BIGINT, ts TIMESTAMP,
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
         WITH (connector = 'kafka', topic = '{topic}',
               'properties.bootstrap.servers' = '{}',
               'properties.group.id' = '{group}'{extra});",
        broker.bootstrap()
    )
}

/// `n` events `{"id": i, "k": i % 7, "ts": base + 10 i}` over the partitions (i % 4).
fn events(from: i64, n: i64) -> Vec<(i32, Option<String>, Option<String>)> {
    let base = 1_767_225_600_000i64;
    (from..from + n)
        .map(|i| {
            (
                (i % PARTITIONS as i64) as i32,
                Some(format!("key-{i}")),
                Some(format!(
                    "{{\"id\":{i},\"k\":{},\"ts\":{}}}",
                    i % 7,
                    base + 10 * i
                )),
            )
        })
        .collect()
}

fn ints(batches: &[RecordBatch], column: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        let c = b.column(b.schema().index_of(column).expect("column"));
        if let Some(a) = c.as_primitive_opt::<Int64Type>() {
            out.extend(a.iter().flatten());
        } else if let Some(a) = c.as_primitive_opt::<Int32Type>() {
            out.extend(a.iter().flatten().map(i64::from));
        }
    }
    out
}

fn run(sql: &str) -> eddy::Collected {
    let script = eddy::plan_script(sql).expect("plans");
    eddy::collect_all(&script.queries[0], &RunOptions::default()).expect("runs")
}

fn each_tier_reads_exactly_what_was_produced(broker: Broker, name: &str) {
    let topic = topic_name(name);
    broker.create_topic(&topic, PARTITIONS);
    let n = 3_000;
    broker.produce(&topic, &events(0, n));
    for tier in ["standard", "buffered", "dedicated", "legacy"] {
        let sql = format!(
            "{} SELECT id, _partition, _offset, _key FROM events;",
            stream_sql(
                &broker,
                &topic,
                &format!("{name}-{tier}"),
                &format!(
                    ", 'consumer.tier' = '{tier}', 'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset'"
                )
            )
        );
        let out = run(&sql);
        let mut ids = ints(&out.batches, "id");
        ids.sort_unstable();
        assert_eq!(ids, (0..n).collect::<Vec<_>>(), "tier {tier}");
        // system columns: the partition is the producer's, offsets per partition are 0..
        let parts = ints(&out.batches, "_partition");
        let all_ids = ints(&out.batches, "id");
        assert!(
            all_ids
                .iter()
                .zip(&parts)
                .all(|(id, p)| id % PARTITIONS as i64 == *p),
            "tier {tier}"
        );
        let mut offsets = ints(&out.batches, "_offset");
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len() as i64, n / PARTITIONS as i64, "tier {tier}");
        assert_eq!(out.stats.records_in, n as u64, "tier {tier}");
    }
}
on_both_brokers!(tiers, each_tier_reads_exactly_what_was_produced);

/// Window counts per window start from the output batches, the last emission winning.
fn window_counts(batches: &[RecordBatch]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for b in batches {
        let s = b
            .column(0)
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        let c = b
            .column(b.schema().index_of("n").expect("n"))
            .as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((s.value(i), c.value(i)));
        }
    }
    out
}

fn restart_resumes_from_committed_offsets(broker: Broker, name: &str) {
    let topic = topic_name(name);
    broker.create_topic(&topic, PARTITIONS);
    let group = format!("{name}-group");
    let query = |extra: &str| {
        format!(
            "{} SELECT window_start, COUNT(*) AS n FROM TUMBLE(events, ts, INTERVAL '10' SECOND)
               GROUP BY window_start, window_end;",
            stream_sql(
                &broker,
                &topic,
                &group,
                &format!(
                    ", 'consumer.batch_size' = '64', 'consumer.commit_interval' = '20 ms'{extra}"
                )
            )
        )
    };
    // 10 ms apart: 1_000 events per 10 s window
    let first = 6_500;
    broker.produce(&topic, &events(0, first));
    // run 1: unbounded; stopped once it has read everything produced so far
    let script = eddy::plan_script(&query("")).expect("plans");
    let sink = CollectSink::default();
    let running = eddy_suite::start_job(&script.queries[0], Box::new(sink.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while running.progress().records_in < first as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    running.stop();
    let stats1 = running.wait().expect("run 1");
    let run1 = window_counts(&sink.batches());
    assert_eq!(stats1.records_in, first as u64);
    // windows emitted by run 1 are complete (watermark past their end in every partition)
    assert!(!run1.is_empty(), "run 1 emitted no window");
    for (start, n) in &run1 {
        assert_eq!(*n, 1_000, "run 1 window {start}");
    }
    // more data, then run 2 in the same group to the end of the topic
    let total = 10_000;
    broker.produce(&topic, &events(first, total - first));
    let out = run(&query(", 'scan.bounded.mode' = 'latest-offset'"));
    let run2 = window_counts(&out.batches);
    // nothing lost: every window has all its rows in one run or the other
    let mut best: BTreeMap<i64, i64> = BTreeMap::new();
    for (s, n) in run1.iter().chain(&run2) {
        let e = best.entry(*s).or_default();
        *e = (*e).max(*n);
    }
    assert_eq!(best.len(), 10, "{best:?}");
    assert!(best.values().all(|&n| n == 1_000), "{best:?}");
    // and run 2 did not start over: it re-read at most the open windows' rows
    assert!(
        out.stats.records_in < (total - first) as u64 + 2_000,
        "run 2 read {} records",
        out.stats.records_in
    );
}
on_both_brokers!(restart, restart_resumes_from_committed_offsets);

fn malformed_messages_under_each_policy(broker: Broker, name: &str) {
    let topic = topic_name(name);
    broker.create_topic(&topic, PARTITIONS);
    let mut records = events(0, 100);
    records[10].2 = Some("{\"id\":".into()); // truncated
    records[21].2 = Some("{\"id\":\"abc\",\"k\":1,\"ts\":1}".into()); // wrong type
    records[33].2 = None; // a tombstone
    records[46].2 = Some("not json at all".into());
    broker.produce(&topic, &records);
    let bad = [10i64, 21, 33, 46];
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = dir.path().join("dead.jsonl");
    let sql = |policy: &str, group: &str| {
        format!(
            "{} SELECT id FROM events;",
            stream_sql(
                &broker,
                &topic,
                group,
                &format!(
                    ", 'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset', \
                     'format.on_error' = '{policy}', 'dead_letter.path' = '{}'",
                    dead.display()
                )
            )
        )
    };
    let good: Vec<i64> = (0..100).filter(|i| !bad.contains(i)).collect();

    let out = run(&sql("skip", &format!("{name}-skip")));
    let mut ids = ints(&out.batches, "id");
    ids.sort_unstable();
    assert_eq!(ids, good);
    assert_eq!(out.stats.malformed, 4);

    let script = eddy::plan_script(&sql("dead_letter", &format!("{name}-dl"))).expect("plans");
    // rows to memory, dead letters where the stream says
    let sink = CollectSink::default();
    let stats = eddy_suite::start_job(&script.queries[0], Box::new(sink.clone()))
        .wait()
        .expect("runs");
    assert_eq!(stats.malformed, 4);
    assert_eq!(ints(&sink.batches(), "id").len(), good.len());
    let text = std::fs::read_to_string(&dead).expect("dead letters written");
    let letters: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(letters.len(), 4, "{text}");
    let mut at: Vec<(i64, i64)> = letters
        .iter()
        .map(|l| {
            assert_eq!(l["topic"], topic.as_str());
            assert!(
                l["reason"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("malformed message: ")
            );
            (
                l["partition"].as_i64().unwrap_or(-1),
                l["offset"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    at.sort_unstable();
    // record i is at partition i % 4, offset i / 4
    let mut expected: Vec<(i64, i64)> = bad.iter().map(|i| (i % 4, i / 4)).collect();
    expected.sort_unstable();
    assert_eq!(at, expected);
    assert!(
        letters.iter().any(|l| l["value"].is_null()),
        "the tombstone: {text}"
    );

    let script = eddy::plan_script(&sql("fail", &format!("{name}-fail"))).expect("plans");
    let err = eddy::collect_all(&script.queries[0], &RunOptions::default())
        .expect_err("fails")
        .to_string();
    assert!(
        err.contains(&format!("malformed message in topic '{topic}' partition ")),
        "{err}"
    );
    assert!(err.contains("at offset "), "{err}");
}
on_both_brokers!(malformed, malformed_messages_under_each_policy);

fn sink_round_trip_and_windows_end_to_end(broker: Broker, name: &str) {
    let input = topic_name(&format!("{name}-in"));
    let output = topic_name(&format!("{name}-out"));
    broker.create_topic(&input, PARTITIONS);
    broker.create_topic(&output, 2);
    let n = 4_000;
    broker.produce(&input, &events(0, n));
    let sql = format!(
        "{}
         CREATE STREAM counts (window_start TIMESTAMP, k BIGINT, n BIGINT, max_id BIGINT)
           WITH (connector = 'kafka', topic = '{output}',
                 'properties.bootstrap.servers' = '{}', 'key.column' = 'k');
         INSERT INTO counts
         SELECT window_start, k, COUNT(*) AS n, MAX(id) AS max_id
         FROM TUMBLE(events, ts, INTERVAL '5' SECOND)
         GROUP BY window_start, window_end, k;",
        stream_sql(
            &broker,
            &input,
            &format!("{name}-e2e"),
            ", 'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset'"
        ),
        broker.bootstrap()
    );
    let script = eddy::plan_script(&sql).expect("plans");
    let stats = eddy::JobManager::new()
        .submit(eddy::JobSpec::new("kafka", script.queries[0].clone()))
        .expect("starts")
        .wait()
        .expect("runs");
    assert_eq!(stats.records_in, n as u64);
    // the expected rows, computed independently
    let base = 1_767_225_600_000i64;
    let mut expected: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
    for i in 0..n {
        let ts = base + 10 * i;
        let start = eddy::types::format_timestamp_ms(ts - ts.rem_euclid(5_000));
        let e = expected.entry((start, i % 7)).or_insert((0, i64::MIN));
        e.0 += 1;
        e.1 = e.1.max(i);
    }
    let records = broker.read_topic(&output, expected.len(), Duration::from_secs(30));
    let mut got: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
    let mut keys: HashMap<i64, String> = HashMap::new();
    for r in &records {
        let v: serde_json::Value = serde_json::from_str(&r.value).expect("JSON value");
        let start = v["window_start"]
            .as_str()
            .expect("window_start text")
            .to_string();
        let k = v["k"].as_i64().expect("k");
        let prev = got.insert(
            (start.clone(), k),
            (
                v["n"].as_i64().expect("n"),
                v["max_id"].as_i64().expect("max_id"),
            ),
        );
        assert!(prev.is_none(), "window ({start}, {k}) written twice");
        keys.insert(k, r.key.clone().expect("a key"));
    }
    assert_eq!(got, expected);
    assert!(
        keys.iter().all(|(k, key)| *key == k.to_string()),
        "{keys:?}"
    );
}
on_both_brokers!(sink, sink_round_trip_and_windows_end_to_end);

#[test]
fn explain_shows_the_tier_and_per_partition_watermark() {
    let sql = "CREATE STREAM bids (auction BIGINT, date_time TIMESTAMP,
                 WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
               WITH (connector = 'kafka', topic = 'bids',
                     'properties.bootstrap.servers' = '127.0.0.1:1', 'idle_timeout' = '5 s');
               EXPLAIN SELECT auction, _partition, _offset FROM bids;";
    let script = eddy::plan_script(sql).expect("plans");
    let text = script.explains[0].explain_text();
    assert!(text.contains("tier=dedicated"), "{text}");
    assert!(text.contains("per_partition=min"), "{text}");
}

#[test]
fn bad_kafka_options_are_clear() {
    let bad = |with: &str| {
        let sql =
            format!("CREATE STREAM s (a BIGINT) WITH (connector = 'kafka', topic = 't', {with});");
        eddy::plan_script(&sql).expect_err("an error").to_string()
    };
    let e = bad("'properties.bootstrap.servers' = 'x:1', 'consumer.tier' = 'turbo'");
    assert!(
        e.contains(
            "'consumer.tier' = 'turbo' must be one of: standard, buffered, dedicated, legacy"
        ),
        "{e}"
    );
    let e = bad("'consumer.tier' = 'standard'");
    assert!(
        e.contains("missing option 'properties.bootstrap.servers'"),
        "{e}"
    );
    let e = bad("'properties.bootstrap.servers' = 'x:1', 'scan.mode' = 'x'");
    assert!(e.contains("unknown option 'scan.mode'"), "{e}");
    let e = bad("'properties.bootstrap.servers' = 'x:1', 'format.on_error' = 'dead_letter'");
    assert!(e.contains("needs 'dead_letter.path'"), "{e}");
    let sql = "CREATE STREAM s (_offset BIGINT) WITH (connector = 'kafka', topic = 't',
               'properties.bootstrap.servers' = 'x:1');";
    let e = eddy::plan_script(sql).expect_err("an error").to_string();
    assert!(e.contains("system column"), "{e}");
}

#[test]
fn an_unknown_topic_or_broker_fails_clearly() {
    let broker = Broker::mock();
    let sql = format!(
        "CREATE STREAM s (a BIGINT) WITH (connector = 'kafka', topic = 'nope',
           'properties.bootstrap.servers' = '{}');
         SELECT a FROM s;",
        broker.bootstrap()
    );
    let script = eddy::plan_script(&sql).expect("plans");
    let e = eddy::collect_all(&script.queries[0], &RunOptions::default())
        .expect_err("fails")
        .to_string();
    assert!(e.contains("topic 'nope'"), "{e}");
}

fn an_empty_partition_stalls_event_time_only_until_the_idle_timeout(broker: Broker, name: &str) {
    let topic = topic_name(name);
    broker.create_topic(&topic, PARTITIONS);
    // rows in partitions 0..=2 only
    let records: Vec<_> = events(0, 3_000)
        .into_iter()
        .filter(|(p, _, _)| *p != 3)
        .collect();
    broker.produce(&topic, &records);
    let windows_after = |idle: &str, group: &str| {
        let sql = format!(
            "{} SELECT window_start, COUNT(*) AS n FROM TUMBLE(events, ts, INTERVAL '10' SECOND)
               GROUP BY window_start, window_end;",
            stream_sql(
                &broker,
                &topic,
                group,
                &format!(", 'scan.startup.mode' = 'earliest'{idle}")
            )
        );
        let script = eddy::plan_script(&sql).expect("plans");
        let sink = CollectSink::default();
        let q = eddy_suite::start_job(&script.queries[0], Box::new(sink.clone()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while q.progress().records_in < records.len() as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(800));
        q.stop();
        q.wait().expect("runs");
        window_counts(&sink.batches())
    };
    // without an idle timeout, the silent partition 3 holds every window open
    assert!(windows_after("", &format!("{name}-stall")).is_empty());
    // with one, it stops counting: the windows the other partitions passed close, exactly
    let closed = windows_after(", 'idle_timeout' = '200 ms'", &format!("{name}-idle"));
    assert!(closed.len() >= 2, "{closed:?}");
    for (start, n) in &closed {
        // 1_000 events per window, a quarter of them in the empty partition
        assert_eq!(*n, 750, "window {start}");
    }
}
on_both_brokers!(
    idle,
    an_empty_partition_stalls_event_time_only_until_the_idle_timeout
);

/// Polled batches decode on `--partitions` threads, handed on in poll
/// order: the rows, late rows, malformed counts and committed offsets are
/// those of one decoder.
fn decoding_on_several_threads_changes_nothing(broker: Broker, name: &str) {
    let topic = topic_name(name);
    broker.create_topic(&topic, PARTITIONS);
    let mut records = events(0, 4_000);
    for i in [7usize, 1_500, 3_999] {
        records[i].2 = Some("{\"id\":".into());
    }
    broker.produce(&topic, &records);
    let sql = |group: &str| {
        format!(
            "{} SELECT k, window_start, COUNT(*) AS n, MAX(id) AS last FROM TUMBLE(events, ts, INTERVAL '1' SECOND)
               GROUP BY k, window_start, window_end;",
            stream_sql(
                &broker,
                &topic,
                group,
                ", 'consumer.batch_size' = '50', 'scan.startup.mode' = 'earliest', \
                 'scan.bounded.mode' = 'latest-offset', 'format.on_error' = 'skip'"
            )
        )
    };
    let rows = |partitions: usize| {
        let script = eddy::plan_script(&sql(&format!("{name}-{partitions}"))).expect("plans");
        let options = RunOptions {
            partitions,
            ..RunOptions::default()
        };
        let out = eddy::collect_all(&script.queries[0], &options).expect("runs");
        let mut lines: Vec<String> =
            eddy_suite::format_rows(&script.queries[0].output_schema, &out.batches)
                .lines()
                .map(str::to_string)
                .collect();
        lines.sort();
        (lines, out.stats.records_in, out.stats.malformed)
    };
    let (one, in1, bad1) = rows(1);
    let (three, in3, bad3) = rows(3);
    assert_eq!(bad1, 3);
    assert_eq!((in3, bad3), (in1, bad1));
    assert!(one.len() > 100, "{} rows", one.len());
    assert_eq!(three, one);
}
on_both_brokers!(parallel_decode, decoding_on_several_threads_changes_nothing);

mod avro;
mod offsets;
mod protobuf;
mod round_trip;
mod upsert;
