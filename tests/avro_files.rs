//! `connector = 'file', format = 'avro'`: object container files written by
//! fastavro (Python, from PyPI: an encoder independent of Eddy's).

use eddy_suite::encoders::avro_file;
use serde_json::json;

fn bids_schema() -> serde_json::Value {
    json!({"type": "record", "name": "Bid", "fields": [
        {"name": "auction", "type": ["null", "long"], "default": null},
        {"name": "bidder", "type": "long"},
        {"name": "price", "type": ["null", "double"], "default": null},
        {"name": "channel", "type": ["null", "string"], "default": null},
        {"name": "date_time", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null}
    ]})
}

fn bids() -> Vec<serde_json::Value> {
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::read_to_string(format!("{root}/tests/sql/data/bids.jsonl"))
        .expect("the golden bids")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

const WINDOWS: &str =
    "SELECT window_start, COUNT(*) AS bids, SUM(price) AS total, COUNT(channel) AS channels
    FROM TUMBLE(b, date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end;";

fn stream(path: &str, extra: &str) -> String {
    format!(
        "CREATE STREAM b (auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
           WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
         WITH (connector = 'file', path = '{path}'{extra});"
    )
}

/// The golden bids as a container file (deflate blocks, and none) give
/// exactly the windows of the same bids as JSON lines, late and NULL-time
/// rows included.
#[test]
fn a_container_file_gives_the_windows_of_the_same_json_lines() {
    let dir = tempfile::tempdir().expect("dir");
    let root = env!("CARGO_MANIFEST_DIR");
    let json = eddy_suite::run_script(&format!(
        "{} {WINDOWS}",
        stream(&format!("{root}/tests/sql/data/bids.jsonl"), "")
    ));
    assert!(json.contains("| 6 | 80.5 | 5"), "{json}");
    for codec in ["deflate", "null"] {
        let path = dir.path().join(format!("bids-{codec}.avro"));
        std::fs::write(&path, avro_file(&bids_schema(), &bids(), codec)).expect("write");
        let avro = eddy_suite::run_script(&format!(
            "{} {WINDOWS}",
            stream(&path.display().to_string(), ", format = 'avro'")
        ));
        assert_eq!(avro, json, "{codec}");
    }
}

/// A reader schema in the DDL resolves the file's: a field it adds takes
/// its default, one it lacks is not read; a column of the wrong type is
/// refused naming the field; a file that is not a container is an error.
#[test]
fn the_reader_schema_evolves_the_file_and_mismatches_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bids.avro");
    std::fs::write(&path, avro_file(&bids_schema(), &bids()[..3], "null")).expect("write");
    let reader = json!({"type": "record", "name": "Bid", "fields": [
        {"name": "bidder", "type": "long"},
        {"name": "region", "type": "string", "default": "eu"}
    ]});
    let out = eddy_suite::run_script(&format!(
        "CREATE STREAM b (bidder BIGINT, region VARCHAR) WITH (connector = 'file', path = '{}',
           format = 'avro', 'avro.schema' = '{reader}'); SELECT bidder, region FROM b;",
        path.display()
    ));
    assert!(out.contains("10 | eu\n11 | eu\n12 | eu\n"), "{out}");
    let wrong = eddy_suite::run_script(&format!(
        "CREATE STREAM b (channel BIGINT) WITH (connector = 'file', path = '{}', format = 'avro');
         SELECT channel FROM b;",
        path.display()
    ));
    assert!(
        wrong.contains("column 'channel' is BIGINT but the Avro field 'channel' is string"),
        "{wrong}"
    );
    let root = env!("CARGO_MANIFEST_DIR");
    let not_avro = eddy_suite::run_script(&format!(
        "CREATE STREAM b (bidder BIGINT) WITH (connector = 'file', path = '{root}/tests/sql/data/bids.jsonl', format = 'avro');
         SELECT bidder FROM b;"
    ));
    assert!(
        not_avro.contains("is not a readable Avro container file"),
        "{not_avro}"
    );
}

/// The file sink writes a container file: fastavro reads it (schema and
/// every value, DECIMAL exact, NULL as null), and Eddy reads it back.
#[test]
fn the_file_sink_writes_a_container_file_fastavro_reads() {
    let dir = tempfile::tempdir().expect("dir");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = dir.path().join("out.avro");
    let sql = format!(
        "{} CREATE STREAM out (auction BIGINT, price DECIMAL(8, 2), channel VARCHAR, date_time TIMESTAMP)
           WITH (connector = 'file', path = '{}', format = 'avro');
         INSERT INTO out SELECT auction, CAST(price AS DECIMAL(8, 2)), channel, date_time FROM b;",
        stream(&format!("{root}/tests/sql/data/bids.jsonl"), ""),
        out.display()
    );
    let script = eddy::plan_script(&sql).unwrap_or_else(|e| panic!("{e}"));
    eddy::JobManager::new()
        .submit(eddy::JobSpec::new("to-ocf", script.queries[0].clone()))
        .expect("starts")
        .wait()
        .expect("runs");
    let read = eddy_suite::encoders::avro_file_records(&std::fs::read(&out).expect("the file"));
    let records = read["records"].as_array().expect("records");
    assert_eq!(records.len(), bids().len());
    assert_eq!(
        records[0],
        json!({"auction": 1, "price": "10.00", "channel": "Google", "date_time": 1_767_225_603_000i64})
    );
    assert_eq!(records[3]["price"], serde_json::Value::Null);
    assert_eq!(
        read["schema"]["fields"][1]["type"][1]["logicalType"],
        "decimal"
    );
    let back = eddy_suite::run_script(&format!(
        "CREATE STREAM b (auction BIGINT, price DECIMAL(8, 2)) WITH (connector = 'file', path = '{}', format = 'avro');
         SELECT COUNT(*) AS n, SUM(price) AS total FROM b EMIT FINAL;",
        out.display()
    ));
    assert!(back.contains("15 | 251.00"), "{back}");
}

/// A DECIMAL column narrower than the file's decimal: a value with more
/// integer digits is a malformed record that follows 'format.on_error'
/// (the query's error naming the record, skipped and counted, or a dead
/// letter naming the file and the record).
#[test]
fn a_decimal_too_wide_for_its_column_follows_the_error_policy() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("prices.avro");
    let schema = json!({"type": "record", "name": "P", "fields": [
        {"name": "id", "type": "long"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 8, "scale": 2}}
    ]});
    let records: Vec<_> = [
        ("1", "1.00"),
        ("2", "123456.78"),
        ("3", "2.50"),
        ("4", "-99999.00"),
    ]
    .iter()
    .map(|(id, p)| json!({"id": id.parse::<i64>().unwrap(), "price": p}))
    .collect();
    std::fs::write(&path, avro_file(&schema, &records, "null")).expect("write");
    let run = |policy: &str| {
        eddy_suite::run_script(&format!(
            "CREATE STREAM p (id BIGINT, price DECIMAL(5, 2)) WITH (connector = 'file', path = '{}',
               format = 'avro'{policy}); SELECT id, price FROM p;",
            path.display()
        ))
    };
    let fail = run("");
    assert!(
        fail.contains("malformed record at line 2: a DECIMAL value has more integer digits"),
        "{fail}"
    );
    let skip = run(", 'format.on_error' = 'skip'");
    assert!(skip.contains("1 | 1.00\n3 | 2.50\n"), "{skip}");
    assert!(skip.contains("malformed=2"), "{skip}");
    let dead = run(", 'format.on_error' = 'dead_letter', 'dead_letter.path' = 'unused.jsonl'");
    assert!(dead.contains("1 | 1.00\n3 | 2.50\n"), "{dead}");
    let letters: Vec<serde_json::Value> = dead
        .lines()
        .filter_map(|l| l.strip_prefix("-- dead letter: "))
        .map(|l| serde_json::from_str(l).expect("a JSON dead letter"))
        .collect();
    let records: Vec<_> = letters.iter().map(|l| l["record"].clone()).collect();
    assert_eq!(records, [json!(2), json!(4)], "{dead}");
    assert_eq!(letters[0]["path"], path.display().to_string());
    assert_eq!(letters[0]["stream"], "p");
}
