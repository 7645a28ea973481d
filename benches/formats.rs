//! Message-value formats: the same 1,000,000 bids as JSON values, Avro
//! bodies and Protobuf messages, decoded as a Kafka source decodes each polled batch (8,192
//! messages), into `auction, bidder, price, channel, date_time` plus the
//! system columns. No broker: the decoders alone.
//!
//! Run: `cargo bench --bench formats`. JSON is the baseline in the same run;
//! the input sizes are printed, for bytes/s. The Avro bodies and Protobuf
//! messages (and the descriptor set) are written here by hand, field by
//! field, which is what any writer produces for these schemas.

use std::hint::black_box;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eddy::connectors::message_values::MessageValues;

const ROWS: usize = 1_000_000;
const BATCH: usize = 8_192;

const AVRO_SCHEMA: &str = r#"{"type": "record", "name": "Bid", "fields": [
  {"name": "auction", "type": "long"}, {"name": "bidder", "type": "long"},
  {"name": "price", "type": "long"}, {"name": "channel", "type": "string"},
  {"name": "date_time", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;

struct Bid {
    auction: i64,
    bidder: i64,
    price: i64,
    channel: &'static str,
    date_time: i64,
}

fn bids() -> Vec<Bid> {
    let channels = ["Google", "Facebook", "Baidu", "Apple"];
    let mut x: u64 = 7;
    (0..ROWS)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Bid {
                auction: 1000 + (x % 1000) as i64,
                bidder: 2000 + ((x >> 20) % 5000) as i64,
                price: ((x >> 8) % 100_000) as i64,
                channel: channels[(x >> 40) as usize % 4],
                date_time: 1_767_225_600_000 + i as i64 / 10,
            }
        })
        .collect()
}

fn json(b: &Bid) -> Vec<u8> {
    format!(
        r#"{{"auction":{},"bidder":{},"price":{},"channel":"{}","date_time":{}}}"#,
        b.auction, b.bidder, b.price, b.channel, b.date_time
    )
    .into_bytes()
}

fn zigzag(v: i64, out: &mut Vec<u8>) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn avro(b: &Bid) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    for v in [b.auction, b.bidder, b.price] {
        zigzag(v, &mut out);
    }
    zigzag(b.channel.len() as i64, &mut out);
    out.extend_from_slice(b.channel.as_bytes());
    zigzag(b.date_time, &mut out);
    out
}

fn put_len(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    zigzag_free_varint((field << 3) | 2, out);
    zigzag_free_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn zigzag_free_varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_int(field: u64, v: u64, out: &mut Vec<u8>) {
    zigzag_free_varint(field << 3, out);
    zigzag_free_varint(v, out);
}

/// `message Bid { int64 auction = 1; int64 bidder = 2; int64 price = 3;
/// string channel = 4; google.protobuf.Timestamp date_time = 5; }`
/// as a compiled descriptor set (written field by field).
fn bid_descriptor_set() -> Vec<u8> {
    let field = |name: &str, number: u64, ty: u64, type_name: &str| {
        let mut f = Vec::new();
        put_len(1, name.as_bytes(), &mut f);
        put_int(3, number, &mut f);
        put_int(4, 1, &mut f);
        put_int(5, ty, &mut f);
        if !type_name.is_empty() {
            put_len(6, type_name.as_bytes(), &mut f);
        }
        f
    };
    let mut msg = Vec::new();
    put_len(1, b"Bid", &mut msg);
    for f in [
        field("auction", 1, 3, ""),
        field("bidder", 2, 3, ""),
        field("price", 3, 3, ""),
        field("channel", 4, 9, ""),
        field("date_time", 5, 11, ".google.protobuf.Timestamp"),
    ] {
        put_len(2, &f, &mut msg);
    }
    let mut file = Vec::new();
    put_len(1, b"bid.proto", &mut file);
    put_len(2, b"nexmark", &mut file);
    put_len(4, &msg, &mut file);
    put_len(12, b"proto3", &mut file);
    let mut set = Vec::new();
    put_len(1, &file, &mut set);
    set
}

fn protobuf(b: &Bid) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    put_int(1, b.auction as u64, &mut out);
    put_int(2, b.bidder as u64, &mut out);
    put_int(3, b.price as u64, &mut out);
    put_len(4, b.channel.as_bytes(), &mut out);
    let mut ts = Vec::new();
    put_int(1, b.date_time.div_euclid(1000) as u64, &mut ts);
    put_int(
        2,
        (b.date_time.rem_euclid(1000) * 1_000_000) as u64,
        &mut ts,
    );
    put_len(5, &ts, &mut out);
    out
}

/// A format's name, its values and its stream options.
type Input<'a> = (&'a str, Vec<Vec<u8>>, Vec<(&'a str, &'a str)>);

fn decode_all(decoder: &mut MessageValues, values: &[Vec<u8>]) -> usize {
    let mut rows = 0;
    for chunk in values.chunks(BATCH) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let (batch, malformed) = decoder.decode(&refs).expect("decodes");
        assert_eq!(malformed, 0);
        rows += batch.num_rows();
    }
    assert_eq!(rows, ROWS);
    rows
}

fn bench(c: &mut Criterion) {
    let declared = Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("bidder", DataType::Int64, true),
        Field::new("price", DataType::Int64, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
    ]));
    let bids = bids();
    let dir = tempfile::tempdir().expect("dir");
    let desc = dir.path().join("bid.desc");
    std::fs::write(&desc, bid_descriptor_set()).expect("write the descriptor set");
    let desc = desc.display().to_string();
    let inputs: Vec<Input<'_>> = vec![
        ("json", bids.iter().map(json).collect(), vec![]),
        (
            "avro",
            bids.iter().map(avro).collect(),
            vec![("format", "avro"), ("avro.schema", AVRO_SCHEMA)],
        ),
        (
            "protobuf",
            bids.iter().map(protobuf).collect(),
            vec![
                ("format", "protobuf"),
                ("protobuf.descriptor.file", desc.as_str()),
                ("protobuf.message", "nexmark.Bid"),
            ],
        ),
    ];
    let mut g = c.benchmark_group("kafka_values_1m_bids");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    for (name, values, options) in &inputs {
        let bytes: usize = values.iter().map(Vec::len).sum();
        eprintln!(
            "{name}: {bytes} bytes of values ({:.1} per bid)",
            bytes as f64 / ROWS as f64
        );
        let mut decoder = MessageValues::new("bids", declared.clone(), options).expect("a decoder");
        g.bench_function(*name, |b| {
            b.iter(|| black_box(decode_all(&mut decoder, values)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
