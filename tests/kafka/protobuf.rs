//! `format = 'protobuf'` on Kafka. Schemas are compiled by `protoc` and
//! values written by Google's `protobuf` package (Python, from PyPI: an
//! encoder independent of Eddy's); every expected value is spelled out here.

use eddy_suite::encoders::{protobuf_values, unbase64};
use eddy_suite::kafka::{Broker, topic_name};
use serde_json::json;

use super::avro::rows;
use super::run;

const TRADE: &str = r#"syntax = "proto3";
package eddy.test;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

enum Side { SIDE_UNKNOWN = 0; BUY = 1; SELL = 2; }
message Leg { string venue = 1; }
message Trade {
  int64 id = 1;
  int32 qty = 2;
  uint64 seq = 3;
  sint64 delta = 4;
  sfixed32 tick = 5;
  fixed64 big = 6;
  double price = 7;
  float ratio = 8;
  bool ok = 9;
  string sym = 10;
  Side side = 11;
  google.protobuf.Timestamp at = 12;
  optional string note = 13;
  google.protobuf.Int64Value maybe = 14;
  string amount = 15;
  repeated string tags = 16;
  Leg leg = 17;
}
"#;

const COLUMNS: &str = "id BIGINT, qty INT, seq BIGINT, delta BIGINT, tick INT, big BIGINT, price DOUBLE, \
     ratio DOUBLE, ok BOOLEAN, sym VARCHAR, side VARCHAR, at TIMESTAMP, note VARCHAR, maybe BIGINT, \
     amount DECIMAL(12, 3)";

fn records() -> Vec<serde_json::Value> {
    vec![
        json!({"id": "1", "qty": -7, "seq": "18446744073709551", "delta": "-5", "tick": -2, "big": "9",
               "price": 12.25, "ratio": 0.5, "ok": true, "sym": "ACME", "side": "BUY",
               "at": "2026-01-01T00:00:00.250Z", "note": "first", "maybe": "-3",
               "amount": "123456789.125", "tags": ["a", "b"], "leg": {"venue": "X"}}),
        // every field absent: proto3 defaults, NULL where the field has presence
        json!({}),
        json!({"id": "9007199254740993", "sym": "é ü 名", "side": "SELL", "at": "1969-12-31T23:59:59.999Z",
               "maybe": "0", "amount": "-0.001"}),
    ]
}

fn source(broker: &Broker, topic: &str, desc: &std::path::Path, extra: &str) -> String {
    format!(
        "CREATE STREAM s ({COLUMNS}) WITH (connector = 'kafka', topic = '{topic}',
           'properties.bootstrap.servers' = '{}', 'properties.group.id' = '{topic}-g',
           'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset',
           format = 'protobuf', 'protobuf.descriptor.file' = '{}',
           'protobuf.message' = 'eddy.test.Trade'{extra});",
        broker.bootstrap(),
        desc.display()
    )
}

/// Every scalar type, the enum, Timestamp, a wrapper, an optional field
/// and decimal text; absent fields as a proto3 reader sees them; fields the
/// stream does not declare (repeated, nested) skipped.
fn every_type_reads_exactly(broker: Broker, name: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let topic = topic_name(name);
    broker.create_topic(&topic, 1);
    let (set, values) = protobuf_values(TRADE, "eddy.test.Trade", &records(), None);
    let desc = dir.path().join("trade.desc");
    std::fs::write(&desc, set).expect("write the descriptor set");
    broker.produce_values(&topic, values);
    let c = run(&format!(
        "{} SELECT * FROM s;",
        source(&broker, &topic, &desc, "")
    ));
    let got: Vec<String> = rows(&c)
        .into_iter()
        .map(|r| r.split(" | ").take(15).collect::<Vec<_>>().join(" | "))
        .collect();
    assert_eq!(
        got,
        [
            "1 | -7 | 18446744073709551 | -5 | -2 | 9 | 12.25 | 0.5 | true | ACME | BUY | 2026-01-01T00:00:00.250 | first | -3 | 123456789.125",
            "0 | 0 | 0 | 0 | 0 | 0 | 0.0 | 0.0 | false |  | SIDE_UNKNOWN | NULL | NULL | NULL | NULL",
            "9007199254740993 | 0 | 0 | 0 | 0 | 0 | 0.0 | 0.0 | false | é ü 名 | SELL | 1969-12-31T23:59:59.999 | NULL | 0 | -0.001",
        ]
    );
    assert_eq!(c.stats.malformed, 0);
}
on_both_brokers!(protobuf_every_type, every_type_reads_exactly);

/// Nested messages and repeated fields are refused when the stream is
/// declared, naming the field; so is a column of another type.
#[test]
fn nested_repeated_and_mismatched_columns_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let (set, _) = protobuf_values(TRADE, "eddy.test.Trade", &[], None);
    let desc = dir.path().join("trade.desc");
    std::fs::write(&desc, set).expect("write");
    for (columns, says) in [
        (
            "leg VARCHAR",
            "field 'leg', the nested message eddy.test.Leg: nested messages are not flattened",
        ),
        ("tags VARCHAR", "reads the repeated field 'tags'"),
        (
            "sym BIGINT",
            "column 'sym' is BIGINT but field 'sym' of eddy.test.Trade is string; declare the column as VARCHAR",
        ),
        (
            "bidder BIGINT",
            "column 'bidder' is not a field of message eddy.test.Trade",
        ),
    ] {
        let sql = format!(
            "CREATE STREAM s ({columns}) WITH (connector = 'kafka', topic = 't',
               'properties.bootstrap.servers' = 'localhost:9', format = 'protobuf',
               'protobuf.descriptor.file' = '{}', 'protobuf.message' = 'eddy.test.Trade');
             SELECT * FROM s;",
            desc.display()
        );
        let e = eddy::plan_script(&sql).unwrap_err().to_string();
        assert!(e.contains(says), "{columns}: {e}");
    }
    let sql = format!(
        "CREATE STREAM s (id BIGINT) WITH (connector = 'kafka', topic = 't',
           'properties.bootstrap.servers' = 'localhost:9', format = 'protobuf',
           'protobuf.descriptor.file' = '{}', 'protobuf.message' = 'eddy.test.Nope');",
        desc.display()
    );
    let e = eddy::plan_script(&sql).unwrap_err().to_string();
    assert!(
        e.contains("has no message 'eddy.test.Nope' (it has: eddy.test.Leg, eddy.test.Trade)"),
        "{e}"
    );
}

/// The Confluent wire format, and bad values under each policy: not
/// protobuf, cut short, not framed, a tombstone.
fn confluent_framing_and_malformed_values(broker: Broker, name: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let topic = topic_name(name);
    broker.create_topic(&topic, 1);
    let (set, good) = protobuf_values(TRADE, "eddy.test.Trade", &records(), Some(42));
    let desc = dir.path().join("trade.desc");
    std::fs::write(&desc, set).expect("write");
    // 0, the id, and Trade's message indexes [1] (count 1, index 1, zigzag)
    let prefix = [0u8, 0, 0, 0, 42, 2, 2];
    assert_eq!(good[0][..7], prefix);
    let mut cut = good[0].clone();
    cut.truncate(cut.len() - 3);
    let unframed = good[2][prefix.len()..].to_vec();
    let mut garbage = prefix.to_vec();
    garbage.extend([0xff, 0xff]);
    let values: Vec<Option<Vec<u8>>> = vec![
        Some(good[0].clone()),
        Some(garbage),
        Some(cut),
        Some(unframed.clone()),
        None,
        Some(good[2].clone()),
    ];
    broker.produce_bytes(
        &topic,
        &values
            .iter()
            .map(|v| (0, None, v.clone()))
            .collect::<Vec<_>>(),
    );
    let confluent = ", 'protobuf.confluent' = 'true'";
    let c = run(&format!(
        "{} SELECT id, sym, _offset FROM s;",
        source(
            &broker,
            &topic,
            &desc,
            &format!("{confluent}, 'format.on_error' = 'skip'")
        )
    ));
    assert_eq!(rows(&c), ["1 | ACME | 0", "9007199254740993 | é ü 名 | 5"]);
    assert_eq!(c.stats.malformed, 4);
    let e = eddy::plan_script(&format!(
        "{} SELECT id FROM s;",
        source(&broker, &topic, &desc, confluent)
    ))
    .map(|s| eddy::collect_all(&s.queries[0], &eddy::RunOptions::default()))
    .expect("plans")
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("offset 1") && e.contains("not a valid message"),
        "{e}"
    );
    let dl = dir.path().join("dead.jsonl");
    let c = run(&format!(
        "{} SELECT id FROM s;",
        source(
            &broker,
            &topic,
            &desc,
            &format!(
                "{confluent}, 'format.on_error' = 'dead_letter', 'dead_letter.path' = '{}'",
                dl.display()
            )
        )
    ));
    let letters: Vec<serde_json::Value> = c
        .dead_letters
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(letters.len(), 4, "{letters:?}");
    assert!(
        letters[1]["reason"]
            .as_str()
            .unwrap()
            .contains("runs past the end"),
        "{letters:?}"
    );
    assert!(
        letters[2]["reason"]
            .as_str()
            .unwrap()
            .contains("not in the Confluent wire format")
    );
    assert_eq!(
        unbase64(letters[2]["value_base64"].as_str().unwrap()),
        unframed
    );
    assert!(letters[3]["reason"].as_str().unwrap().contains("tombstone"));
    assert_eq!(letters[3]["value_base64"], serde_json::Value::Null);
}
on_both_brokers!(protobuf_malformed, confluent_framing_and_malformed_values);

const BID: &str = r#"syntax = "proto3";
package nexmark;
import "google/protobuf/timestamp.proto";
message Bid { int64 id = 1; int64 k = 2; google.protobuf.Timestamp ts = 3; string amount = 4; }
"#;

/// JSON → Eddy → a Protobuf topic → Eddy → the same windows as from the
/// JSON (`round_trip.rs`); the sink writes `amount`, a DECIMAL, as text.
fn round_trip_through_a_protobuf_topic(broker: Broker, name: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let (set, _) = protobuf_values(BID, "nexmark.Bid", &[], None);
    let desc = dir.path().join("bid.desc");
    std::fs::write(&desc, set).expect("write");
    let options = || {
        format!(
            "format = 'protobuf', 'protobuf.descriptor.file' = '{}', 'protobuf.message' = 'nexmark.Bid'",
            desc.display()
        )
    };
    super::round_trip::windows_survive(
        &broker,
        name,
        &super::round_trip::Format {
            sink: &options,
            source: &options,
            written: &|records| assert!(!records[0].bytes.is_empty()),
        },
    );
}
on_both_brokers!(protobuf_round_trip, round_trip_through_a_protobuf_topic);

/// Schemas from a registry (the stand-in of `eddy_suite::registry`): the
/// stream reads as the subject's latest `.proto` source; each value's id
/// must be in the registry and name the message there; a sink registers
/// the schema of its columns and writes the Confluent wire format.
fn registry_schemas(broker: Broker, name: &str) {
    let registry = eddy_suite::registry::StandInRegistry::start();
    let topic = topic_name(name);
    broker.create_topic(&topic, 1);
    let subject = format!("{topic}-value");
    let id = registry.register(&subject, TRADE);
    let (_, mut values) = protobuf_values(TRADE, "eddy.test.Trade", &records(), Some(id));
    let (_, unknown) = protobuf_values(TRADE, "eddy.test.Trade", &records()[..1], Some(777));
    values.insert(1, unknown[0].clone());
    broker.produce_values(&topic, values);
    let sql = format!(
        "CREATE STREAM s (id BIGINT, sym VARCHAR, side VARCHAR, at TIMESTAMP, amount DECIMAL(12, 3))
         WITH (connector = 'kafka', topic = '{topic}', 'properties.bootstrap.servers' = '{}',
               'properties.group.id' = '{topic}-g', 'scan.startup.mode' = 'earliest',
               'scan.bounded.mode' = 'latest-offset', format = 'protobuf',
               'protobuf.schema-registry.url' = '{}', 'protobuf.message' = 'eddy.test.Trade',
               'format.on_error' = 'dead_letter', 'dead_letter.path' = 'unused.jsonl');
         SELECT * FROM s;",
        broker.bootstrap(),
        registry.url()
    );
    let c = run(&sql);
    assert_eq!(
        rows(&c),
        [
            "1 | ACME | BUY | 2026-01-01T00:00:00.250 | 123456789.125",
            "0 |  | SIDE_UNKNOWN | NULL | NULL",
            "9007199254740993 | é ü 名 | SELL | 1969-12-31T23:59:59.999 | -0.001",
        ]
    );
    assert_eq!(c.dead_letters.len(), 1, "{:?}", c.dead_letters);
    let letter: serde_json::Value = serde_json::from_str(&c.dead_letters[0]).expect("JSON");
    assert_eq!(letter["offset"], 1);
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("has no schema id 777"),
        "{letter}"
    );

    // a sink registers its columns' schema; a source reads it back
    let options = || {
        format!(
            "format = 'protobuf', 'protobuf.schema-registry.url' = '{}', 'protobuf.schema-registry.subject' = '{name}-rt'",
            registry.url()
        )
    };
    let written = |records: &[eddy_suite::kafka::Record]| {
        let id = u32::from_be_bytes(records[0].bytes[1..5].try_into().unwrap());
        assert_eq!((records[0].bytes[0], records[0].bytes[5]), (0, 0));
        let text = registry.schema(id).expect("registered");
        assert!(text.contains("google.protobuf.Timestamp ts = 3;"), "{text}");
    };
    super::round_trip::windows_survive(
        &broker,
        &format!("{name}-rt"),
        &super::round_trip::Format {
            sink: &options,
            source: &options,
            written: &written,
        },
    );
}
on_both_brokers!(protobuf_registry, registry_schemas);

/// Schema evolution with a registry: values written with v1 read as the
/// latest v2, which added a field (absent: NULL, it is `optional`) and
/// dropped one (its bytes are skipped); v2's values read the new field.
fn registry_schema_evolution(broker: Broker, name: &str) {
    let registry = eddy_suite::registry::StandInRegistry::start();
    let topic = topic_name(name);
    broker.create_topic(&topic, 1);
    let v1 = "syntax = \"proto3\"; package ev; message Click { string user = 1; int64 n = 2; string gone = 3; }";
    let v2 = "syntax = \"proto3\"; package ev; message Click { string user = 1; int64 n = 2; optional string page = 4; }";
    let subject = format!("{topic}-value");
    let id1 = registry.register(&subject, v1);
    let (_, mut values) = protobuf_values(
        v1,
        "ev.Click",
        &[json!({"user": "ann", "n": "1", "gone": "x"})],
        Some(id1),
    );
    let id2 = registry.register(&subject, v2);
    let (_, new) = protobuf_values(
        v2,
        "ev.Click",
        &[json!({"user": "bob", "n": "2", "page": "cart"})],
        Some(id2),
    );
    values.extend(new);
    broker.produce_values(&topic, values);
    let sql = |columns: &str| {
        format!(
            "CREATE STREAM s ({columns}) WITH (connector = 'kafka', topic = '{topic}',
               'properties.bootstrap.servers' = '{}', 'properties.group.id' = '{topic}-g',
               'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset',
               format = 'protobuf', 'protobuf.schema-registry.url' = '{}');
             SELECT * FROM s;",
            broker.bootstrap(),
            registry.url()
        )
    };
    let c = run(&sql("user VARCHAR, n BIGINT, page VARCHAR"));
    assert_eq!(rows(&c), ["ann | 1 | NULL", "bob | 2 | cart"]);
    // the field v2 dropped is no column of the stream any more
    let e = eddy::plan_script(&sql("user VARCHAR, gone VARCHAR"))
        .map(|s| eddy::collect_all(&s.queries[0], &eddy::RunOptions::default()))
        .expect("plans")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("column 'gone' is not a field of message ev.Click"),
        "{e}"
    );
}
on_both_brokers!(protobuf_evolution, registry_schema_evolution);
