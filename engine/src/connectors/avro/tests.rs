use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::decode::AvroDecoder;
use super::encode::AvroEncoder;
use super::*;

const BID: &str = r#"{"type": "record", "name": "Bid", "namespace": "nexmark", "fields": [
  {"name": "auction", "type": "long"},
  {"name": "price", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}]},
  {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["Apple", "Google"]}},
  {"name": "extra", "type": ["null", "string"], "default": null},
  {"name": "date_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "tags", "type": {"type": "array", "items": "string"}}
]}"#;

/// Stream options of `pairs`.
fn o(pairs: &[(&str, &str)]) -> crate::catalog::Options {
    crate::catalog::Options::new(
        "s",
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

fn declared(cols: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

#[test]
fn columns_map_to_fields_by_name_and_type() {
    let record = RecordSchema::parse(BID).unwrap();
    let ok = declared(&[
        ("auction", DataType::Int64),
        ("price", DataType::Decimal128(10, 2)),
        ("channel", DataType::Utf8),
        ("EXTRA", DataType::Utf8),
        (
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
        ),
    ]);
    check_columns(&ok, &record).unwrap();
    for (col, ty, says) in [
        (
            "auction",
            DataType::Int32,
            "column 'auction' is INT but the Avro field 'auction' is long; declare the column as BIGINT",
        ),
        (
            "channel",
            DataType::Int64,
            "is enum; declare the column as VARCHAR",
        ),
        (
            "tags",
            DataType::Utf8,
            "the Avro field 'tags' is a nested array",
        ),
        (
            "bidder",
            DataType::Int64,
            "column 'bidder' is not a field of the Avro record (its fields: auction, price, channel, extra, date_time, tags)",
        ),
    ] {
        let e = check_columns(&declared(&[(col, ty)]), &record).unwrap_err();
        assert!(e.contains(says), "{e}");
    }
    assert!(
        RecordSchema::parse("\"long\"")
            .unwrap_err()
            .contains("must be a record")
    );
    assert!(RecordSchema::parse("{").unwrap_err().contains("not JSON"));
}

#[test]
fn the_reader_schema_keeps_the_columns_read() {
    let record = RecordSchema::parse(BID).unwrap();
    let reader = record.reader_for(&["date_time".into(), "auction".into()]);
    let names: Vec<&str> = reader["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["date_time", "auction"]);
    assert_eq!(reader["name"], "Bid");
}

fn batch() -> RecordBatch {
    let schema = declared(&[
        ("auction", DataType::Int64),
        ("channel", DataType::Utf8),
        (
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
        ),
    ]);
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_767_225_600_000),
                Some(1_767_225_601_500),
                None,
            ])),
        ],
    )
    .unwrap()
}

/// Eddy's own encoder and decoder agree (the independent encoders' tests
/// are in tests/avro.rs); bad values are found one by one and the good
/// ones around them kept.
#[test]
fn values_round_trip_and_bad_ones_are_malformed() {
    let b = batch();
    let source = SchemaSource::None;
    let mut enc = AvroEncoder::new("s", &b.schema(), &source).unwrap();
    let values = enc.encode(&b).unwrap();
    assert_eq!(values.len(), 3);
    let text = schema_of_columns("s", &b.schema()).to_string();
    let given = SchemaSource::Given(text);
    let read = declared(&[
        ("auction", DataType::Int64),
        ("date_time", b.schema().field(2).data_type().clone()),
    ]);
    let mut dec = AvroDecoder::new("s", read.clone(), &b.schema(), &given).unwrap();
    let mut truncated = values[1].to_vec();
    truncated.pop();
    let mut longer = values[2].to_vec();
    longer.push(0);
    let inputs: Vec<Option<&[u8]>> = vec![
        Some(&values[0]),
        Some(&truncated),
        Some(&values[1]),
        None,
        Some(&longer),
        Some(b""),
        Some(&values[2]),
    ];
    let out = dec.decode(&inputs).unwrap();
    assert_eq!(out.rows, [0, 2, 6]);
    let bad: Vec<usize> = out.malformed.iter().map(|(i, _)| *i).collect();
    assert_eq!(bad, [1, 3, 4, 5], "{:?}", out.malformed);
    assert!(
        out.malformed[0].1.contains("not valid Avro"),
        "{:?}",
        out.malformed
    );
    assert!(out.malformed[1].1.contains("tombstone"));
    assert!(out.malformed[2].1.contains("1 bytes follow the record"));
    let auction = out.batch.column(0).as_primitive::<Int64Type>();
    assert_eq!(auction.iter().collect::<Vec<_>>(), [Some(1), None, Some(3)]);
    let t = out.batch.column(1);
    assert_eq!(
        t.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, None)
    );
    assert!(t.is_null(2));
}

#[test]
fn schema_options_are_one_way() {
    let SchemaSource::Registry { registry, subject } = SchemaSource::from_options(
        &o(&[("avro.schema-registry.url", "http://r:8081/")]),
        Some("bids"),
    )
    .unwrap() else {
        panic!("a registry")
    };
    assert_eq!(
        (registry.url.as_str(), subject.as_str()),
        ("http://r:8081", "bids-value")
    );
    let e = SchemaSource::from_options(
        &o(&[
            ("avro.schema", "{}"),
            ("avro.schema-registry.url", "http://r"),
        ]),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("one way"), "{e}");
    let e =
        SchemaSource::from_options(&o(&[("avro.schema.file", "/no/such.avsc")]), None).unwrap_err();
    assert!(
        e.to_string().contains("cannot read 'avro.schema.file'"),
        "{e}"
    );
}

#[test]
fn registry_credentials_come_from_an_option_or_the_url_and_stay_out_of_sight() {
    use super::registry::Address;
    let url = "avro.schema-registry.url";
    let auth = "avro.schema-registry.basic-auth.user-info";
    let given = Address::from_options(
        &o(&[(url, "https://r.cloud/"), (auth, "KEY:s3cr/t")]),
        "avro",
    )
    .unwrap()
    .unwrap();
    let in_url = Address::from_options(&o(&[(url, "https://KEY:s3cr%2Ft@r.cloud")]), "avro")
        .unwrap()
        .unwrap();
    assert_eq!(given, in_url);
    assert_eq!(given.url, "https://r.cloud");
    let shown = format!("{given:?}");
    assert!(!shown.contains("s3cr"), "{shown}");
    assert!(Address::from_options(&o(&[]), "avro").unwrap().is_none());
    for (pairs, says) in [
        (vec![(url, "https://a:b@r"), (auth, "a:b")], "one way"),
        (
            vec![(url, "https://r"), (auth, "no-colon")],
            "'user:password'",
        ),
        (vec![(auth, "a:b")], "needs 'avro.schema-registry.url'"),
        (vec![(url, "r:8081")], "is not an http:// or https:// URL"),
    ] {
        let e = Address::from_options(&o(&pairs), "avro")
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{e}");
        assert!(!e.contains("no-colon"), "{e}");
    }
}
