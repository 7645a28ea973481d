//! `format = 'avro'` on Kafka. Values are written by fastavro (Python, from
//! PyPI: an encoder independent of Eddy's), the schema registry is the
//! stand-in of `eddy_suite::registry` (it stands in for the real service,
//! which cannot be installed here), and every expected value is spelled out
//! in the test.

use arrow::array::Array;
use arrow::util::display::array_value_to_string;
use eddy_suite::encoders::{avro_values, unbase64};
use eddy_suite::kafka::{Broker, topic_name};
use eddy_suite::registry::StandInRegistry;
use serde_json::json;

use super::run;

/// Every row of the output as `a | b | ...` text, in order.
pub(super) fn rows(c: &eddy::Collected) -> Vec<String> {
    let mut out = Vec::new();
    for b in &c.batches {
        for r in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|col| {
                    if col.is_null(r) {
                        "NULL".into()
                    } else {
                        array_value_to_string(col, r).expect("a value")
                    }
                })
                .collect();
            out.push(cells.join(" | "));
        }
    }
    out
}

fn source(broker: &Broker, topic: &str, columns: &str, format: &str) -> String {
    format!(
        "CREATE STREAM s ({columns}) WITH (connector = 'kafka', topic = '{topic}',
           'properties.bootstrap.servers' = '{}', 'properties.group.id' = '{topic}-g',
           'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset',
           format = 'avro'{format});",
        broker.bootstrap()
    )
}

fn all_types() -> serde_json::Value {
    json!({"type": "record", "name": "Trade", "namespace": "eddy.test", "fields": [
        {"name": "id", "type": "long"},
        {"name": "qty", "type": "int"},
        {"name": "ratio", "type": "float"},
        {"name": "price", "type": "double"},
        {"name": "ok", "type": "boolean"},
        {"name": "sym", "type": "string"},
        {"name": "side", "type": {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 3}},
        {"name": "fee", "type": {"type": "fixed", "name": "Fee", "size": 8, "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "note", "type": ["null", "string"], "default": null},
        {"name": "extra", "type": {"type": "map", "values": "string"}}
    ]})
}

fn all_types_records() -> Vec<serde_json::Value> {
    vec![
        json!({"id": 1, "qty": -7, "ratio": 0.5, "price": 12.25, "ok": true, "sym": "ACME",
               "side": "BUY", "at": 1_767_225_600_250i64, "at_us": 1_767_225_600_250_999i64,
               "amount": "123456789.125", "fee": "-0.05", "note": "first", "extra": {"a": "b"}}),
        json!({"id": 9_007_199_254_740_993i64, "qty": 2_147_483_647, "ratio": -1.25, "price": -0.0, "ok": false,
               "sym": "é ü 名", "side": "SELL", "at": 0, "at_us": -1_000,
               "amount": "-0.001", "fee": "99999999.99", "note": null, "extra": {}}),
    ]
}

const ALL_COLUMNS: &str = "id BIGINT, qty INT, ratio DOUBLE, price DOUBLE, ok BOOLEAN, sym VARCHAR, \
     side VARCHAR, at TIMESTAMP, at_us TIMESTAMP, amount DECIMAL(12, 3), fee DECIMAL(10, 2), note VARCHAR";

/// Every type Eddy maps, its logical types and NULL, from bare Avro bodies
/// with the schema inline; a field the stream does not declare (a map) is
/// skipped.
fn every_type_reads_exactly(broker: Broker, name: &str) {
    let topic = topic_name(name);
    broker.create_topic(&topic, 1);
    let values = avro_values(&all_types(), &all_types_records(), None);
    broker.produce_values(&topic, values);
    let schema = all_types().to_string().replace('\'', "''");
    let sql = format!(
        "{} SELECT * FROM s;",
        source(
            &broker,
            &topic,
            ALL_COLUMNS,
            &format!(", 'avro.schema' = '{schema}'")
        )
    );
    let got: Vec<String> = rows(&run(&sql))
        .into_iter()
        .map(|r| r.split(" | ").take(12).collect::<Vec<_>>().join(" | "))
        .collect();
    assert_eq!(
        got,
        [
            "1 | -7 | 0.5 | 12.25 | true | ACME | BUY | 2026-01-01T00:00:00.250 | 2026-01-01T00:00:00.250 | 123456789.125 | -0.05 | first",
            "9007199254740993 | 2147483647 | -1.25 | -0.0 | false | é ü 名 | SELL | 1970-01-01T00:00:00 | 1969-12-31T23:59:59.999 | -0.001 | 99999999.99 | NULL",
        ]
    );
    // projection: a query reading two columns gets the same values
    let sql = format!(
        "{} SELECT amount, sym FROM s;",
        source(
            &broker,
            &topic,
            ALL_COLUMNS,
            &format!(", 'avro.schema' = '{schema}'")
        )
    );
    assert_eq!(
        rows(&run(&sql)),
        ["123456789.125 | ACME", "-0.001 | é ü 名"]
    );
}
on_both_brokers!(avro_every_type, every_type_reads_exactly);

/// A column the schema lacks, or of a type its field is not, is an error
/// when the stream is declared, naming the field.
#[test]
fn a_mismatch_is_refused_when_declared() {
    let schema = all_types().to_string();
    for (columns, says) in [
        (
            "id BIGINT, bidder BIGINT",
            "column 'bidder' is not a field of the Avro record",
        ),
        (
            "sym BIGINT",
            "column 'sym' is BIGINT but the Avro field 'sym' is string; declare the column as VARCHAR",
        ),
        ("extra VARCHAR", "the Avro field 'extra' is a nested map"),
    ] {
        let sql = format!(
            "CREATE STREAM s ({columns}) WITH (connector = 'kafka', topic = 't',
               'properties.bootstrap.servers' = 'localhost:9', format = 'avro',
               'avro.schema' = '{schema}'); SELECT * FROM s;"
        );
        let e = eddy::plan_script(&sql).unwrap_err().to_string();
        assert!(e.contains(says), "{columns}: {e}");
    }
}

fn v1() -> serde_json::Value {
    json!({"type": "record", "name": "Click", "fields": [
        {"name": "user", "type": "string"},
        {"name": "n", "type": "int"},
        {"name": "gone", "type": ["null", "string"], "default": null}
    ]})
}

/// v2 drops `gone`, adds `page` with a default and widens `n` to long.
fn v2() -> serde_json::Value {
    json!({"type": "record", "name": "Click", "fields": [
        {"name": "user", "type": "string"},
        {"name": "n", "type": "long"},
        {"name": "page", "type": "string", "default": "home"}
    ]})
}

fn registry_source(
    broker: &Broker,
    registry: &StandInRegistry,
    topic: &str,
    columns: &str,
    extra: &str,
) -> String {
    source(
        broker,
        topic,
        columns,
        &format!(", 'avro.schema-registry.url' = '{}'{extra}", registry.url()),
    )
}

/// The Confluent wire format with a registry: messages of two schema
/// versions read as the latest (an added field takes its default, a removed
/// one is gone, int widens to long); ids are fetched once; a message with an
/// unknown id, or not in the wire format, is malformed under every policy.
fn registry_and_schema_evolution(broker: Broker, name: &str) {
    let registry = StandInRegistry::start();
    let topic = topic_name(name);
    broker.create_topic(&topic, 1);
    let subject = format!("{topic}-value");
    let id1 = registry.register(&subject, &v1().to_string());
    let old = avro_values(
        &v1(),
        &[
            json!({"user": "ann", "n": 1, "gone": "x"}),
            json!({"user": "bob", "n": 2, "gone": null}),
        ],
        Some(id1),
    );
    let id2 = registry.register(&subject, &v2().to_string());
    let new = avro_values(
        &v2(),
        &[json!({"user": "cy", "n": 5_000_000_000i64, "page": "cart"})],
        Some(id2),
    );
    let unknown = avro_values(
        &v2(),
        &[json!({"user": "dan", "n": 1, "page": "p"})],
        Some(999),
    );
    let bare = avro_values(&v2(), &[json!({"user": "eve", "n": 1, "page": "p"})], None);
    // a schema without `n` (a query reading `n` cannot take it: the latest
    // gives no default; one that does not read `n` can)
    let v0 =
        json!({"type": "record", "name": "Click", "fields": [{"name": "user", "type": "string"}]});
    let id0 = registry.register("another-subject", &v0.to_string());
    let incompatible = avro_values(&v0, &[json!({"user": "fay"})], Some(id0));
    let mut values = old.clone();
    values.push(unknown[0].clone());
    values.push(bare[0].clone());
    values.extend(new.clone());
    values.extend(old.clone());
    values.push(incompatible[0].clone());
    broker.produce_bytes(
        &topic,
        &values
            .iter()
            .map(|v| (0, None, Some(v.clone())))
            .collect::<Vec<_>>(),
    );
    let columns = "user VARCHAR, n BIGINT, page VARCHAR";
    let skip = format!(
        "{} SELECT user, n, page, _offset FROM s;",
        registry_source(
            &broker,
            &registry,
            &topic,
            columns,
            ", 'format.on_error' = 'skip'"
        )
    );
    let c = run(&skip);
    assert_eq!(
        rows(&c),
        [
            "ann | 1 | home | 0",
            "bob | 2 | home | 1",
            "cy | 5000000000 | cart | 4",
            "ann | 1 | home | 5",
            "bob | 2 | home | 6",
        ]
    );
    assert_eq!(c.stats.malformed, 3);
    // the schemas are cached: v2 came with the subject's latest, v1 is
    // fetched once; only the unknown id is asked again, once per decoder
    let asked = registry.by_id_requests();
    assert!((2..=4).contains(&asked), "{asked} requests");

    // fail: the first bad message stops the query, saying why
    let fail = format!(
        "{} SELECT user FROM s;",
        registry_source(&broker, &registry, &topic, columns, "")
    );
    let e = eddy::plan_script(&fail)
        .map(|s| eddy::collect_all(&s.queries[0], &eddy::RunOptions::default()))
        .expect("plans")
        .unwrap_err()
        .to_string();
    assert!(e.contains("offset 2") && e.contains("schema id 999"), "{e}");

    // dead letters carry the raw value, base64-encoded, and the reason
    let dir = tempfile::tempdir().expect("dir");
    let dl = dir.path().join("dead.jsonl");
    let dead = format!(
        "{} SELECT user, n FROM s;",
        registry_source(
            &broker,
            &registry,
            &topic,
            columns,
            &format!(
                ", 'format.on_error' = 'dead_letter', 'dead_letter.path' = '{}'",
                dl.display()
            )
        )
    );
    let c = run(&dead);
    assert_eq!(rows(&c).len(), 5);
    let letters: Vec<serde_json::Value> = c
        .dead_letters
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert_eq!(letters[0]["offset"], 2);
    assert_eq!(
        unbase64(letters[0]["value_base64"].as_str().unwrap()),
        unknown[0]
    );
    assert!(
        letters[1]["reason"]
            .as_str()
            .unwrap()
            .contains("not in the Confluent wire format")
    );
    assert_eq!(
        unbase64(letters[1]["value_base64"].as_str().unwrap()),
        bare[0]
    );
    assert_eq!(letters[2]["offset"], 7);
    let why = letters[2]["reason"].as_str().unwrap();
    assert!(
        why.contains(&format!(
            "schema id {id0} cannot be read as the columns the query reads"
        )),
        "{why}"
    );

    // a column the latest schema dropped is refused when the query starts
    let gone = format!(
        "{} SELECT gone FROM s;",
        registry_source(&broker, &registry, &topic, "user VARCHAR, gone VARCHAR", "")
    );
    let e = eddy::plan_script(&gone)
        .map(|s| eddy::collect_all(&s.queries[0], &eddy::RunOptions::default()))
        .expect("plans")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("column 'gone' is not a field of the Avro record"),
        "{e}"
    );
}
on_both_brokers!(avro_registry, registry_and_schema_evolution);

/// JSON → Eddy → an Avro topic whose schema the sink registered → Eddy →
/// the same windows as from the JSON (`round_trip.rs`).
fn round_trip_through_an_avro_topic(broker: Broker, name: &str) {
    let registry = StandInRegistry::start();
    let options = || {
        format!(
            "format = 'avro', 'avro.schema-registry.url' = '{}', 'avro.schema-registry.subject' = '{name}-value'",
            registry.url()
        )
    };
    let written = |records: &[eddy_suite::kafka::Record]| {
        // the registry holds what the sink registered, and every value names it
        for r in records {
            assert_eq!(r.bytes[0], 0);
        }
        let id = u32::from_be_bytes(records[0].bytes[1..5].try_into().unwrap());
        assert!(
            registry
                .schema(id)
                .expect("registered")
                .contains("\"amount\"")
        );
    };
    super::round_trip::windows_survive(
        &broker,
        name,
        &super::round_trip::Format {
            sink: &options,
            source: &options,
            written: &written,
        },
    );
}
on_both_brokers!(avro_round_trip, round_trip_through_an_avro_topic);

/// A registry that refuses the sink's schema (incompatible with the
/// subject's) stops the query's start with the registry's message.
#[test]
fn a_refused_sink_schema_stops_the_start() {
    let broker = Broker::mock();
    let registry = StandInRegistry::start();
    let topic = topic_name("avro-refused");
    broker.create_topic(&topic, 1);
    registry.refuse_new_schemas();
    let sql = format!(
        "CREATE STREAM g WITH (connector = 'nexmark', stream = 'bid', events = '100');
         CREATE STREAM out (auction BIGINT) WITH (connector = 'kafka', topic = '{topic}',
           'properties.bootstrap.servers' = '{}', format = 'avro',
           'avro.schema-registry.url' = '{}');
         INSERT INTO out SELECT auction FROM g;",
        broker.bootstrap(),
        registry.url()
    );
    let script = eddy::plan_script(&sql).expect("plans");
    let e = match eddy::JobManager::new()
        .submit(eddy::JobSpec::new("refused", script.queries[0].clone()))
    {
        Err(e) => e.to_string(),
        Ok(job) => job.wait().expect_err("the start fails").to_string(),
    };
    assert!(
        e.contains("refused the schema for subject") && e.contains("incompatible"),
        "{e}"
    );
}

/// A registry behind basic authentication (Confluent Cloud's API key and
/// secret): with the credentials, from the option or in the URL, a sink
/// registers and a source reads; without them, or with wrong ones, the
/// start fails saying which option to set, and never shows the secret.
#[test]
fn a_registry_behind_basic_authentication() {
    let broker = Broker::mock();
    let registry = StandInRegistry::start();
    // base64("KEY:s3cr/t"), computed with Python's base64 module
    registry.require_authorization("Basic S0VZOnMzY3IvdA==");
    let topic = topic_name("avro-auth");
    broker.create_topic(&topic, 1);
    let url = registry.url();
    let with_option = format!(
        "'avro.schema-registry.url' = '{url}', 'avro.schema-registry.basic-auth.user-info' = 'KEY:s3cr/t'"
    );
    let in_url = format!(
        "'avro.schema-registry.url' = '{}'",
        url.replace("http://", "http://KEY:s3cr%2Ft@")
    );
    let write = format!(
        "CREATE STREAM g WITH (connector = 'nexmark', stream = 'bid', events = '100');
         CREATE STREAM out (auction BIGINT) WITH (connector = 'kafka', topic = '{topic}',
           'properties.bootstrap.servers' = '{}', format = 'avro', {with_option});
         INSERT INTO out SELECT auction FROM g;",
        broker.bootstrap()
    );
    let script = eddy::plan_script(&write).expect("plans");
    eddy::JobManager::new()
        .submit(eddy::JobSpec::new("auth-write", script.queries[0].clone()))
        .expect("starts")
        .wait()
        .expect("writes");
    let outcome = |sql: &str| match eddy::plan_script(sql) {
        Err(e) => format!("error: {e}"),
        Ok(s) => match eddy::collect_all(&s.queries[0], &eddy::RunOptions::default()) {
            Err(e) => format!("error: {e}"),
            Ok(c) => eddy_suite::format_rows(&s.queries[0].output_schema, &c.batches),
        },
    };
    let read = |auth: &str| {
        outcome(&format!(
            "{} SELECT COUNT(*) AS n FROM s EMIT FINAL;",
            source(&broker, &topic, "auction BIGINT", &format!(", {auth}"))
        ))
    };
    for auth in [&with_option, &in_url] {
        let out = read(auth);
        assert!(out.ends_with("\n92\n"), "{out}");
    }
    let without = read(&format!("'avro.schema-registry.url' = '{url}'"));
    assert!(
        without.contains("wants credentials")
            && without
                .contains("set 'avro.schema-registry.basic-auth.user-info' = 'user:password'"),
        "{without}"
    );
    let wrong = read(&format!(
        "'avro.schema-registry.url' = '{url}', 'avro.schema-registry.basic-auth.user-info' = 'KEY:wrong-pass'"
    ));
    assert!(wrong.contains("refused the credentials given"), "{wrong}");
    let wrong_in_url = read(&format!(
        "'avro.schema-registry.url' = '{}'",
        url.replace("http://", "http://KEY:wrong-pass@")
    ));
    assert!(
        wrong_in_url.contains("refused the credentials given"),
        "{wrong_in_url}"
    );
    assert!(!wrong.contains("wrong-pass") && !wrong_in_url.contains("wrong-pass"));
    // the same options for Protobuf
    let proto = outcome(&format!(
        "CREATE STREAM p (auction BIGINT) WITH (connector = 'kafka', topic = '{topic}',
           'properties.bootstrap.servers' = '{}', format = 'protobuf',
           'protobuf.schema-registry.url' = '{url}');
         SELECT auction FROM p;",
        broker.bootstrap()
    ));
    assert!(
        proto.contains("set 'protobuf.schema-registry.basic-auth.user-info'"),
        "{proto}"
    );
}
