//! Resuming a Kafka source at a reported state, on librdkafka's mock cluster.

use super::*;
use crate::catalog::Options;
use crate::connectors::kafka::with_system_columns;
use arrow::array::AsArray;
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};

fn def(bootstrap: &str) -> StreamDef {
    let opts = [
        ("connector", "kafka"),
        ("topic", "t"),
        ("properties.bootstrap.servers", bootstrap),
        ("scan.startup.mode", "earliest"),
        ("scan.bounded.mode", "latest-offset"),
        ("consumer.tier", "buffered"),
        ("consumer.batch_size", "3"),
    ];
    let declared = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
    StreamDef {
        name: "s".into(),
        schema: with_system_columns(&declared),
        watermark: None,
        primary_key: Vec::new(),
        options: Options::new(
            "s",
            opts.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        ),
        event_time: Default::default(),
        pos: Default::default(),
    }
}

fn values(src: &mut KafkaSource, batches: Option<usize>) -> Vec<i64> {
    let mut out = Vec::new();
    let mut seen = 0;
    while batches.is_none_or(|n| seen < n) {
        match src.poll().unwrap() {
            SourceEvent::Batch(b) => {
                out.extend(b.column(0).as_primitive::<Int64Type>().values().iter());
                seen += 1;
            }
            SourceEvent::Idle | SourceEvent::Watermark(_) => {}
            SourceEvent::End => break,
        }
    }
    out
}

#[test]
fn a_resumed_source_reads_each_record_once() {
    let mock: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1).unwrap();
    mock.create_topic("t", 2, 1).unwrap();
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .create()
        .unwrap();
    for i in 0..20i64 {
        let v = format!("{{\"a\": {i}}}");
        producer
            .send(
                BaseRecord::<str, str>::to("t")
                    .partition((i % 2) as i32)
                    .payload(&v),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let d = def(&mock.bootstrap_servers());
    let ctx = SourceContext::new(3);
    let mut first = KafkaSource::open(&d, &ctx).unwrap();
    let mut read = values(&mut first, Some(2));
    assert!(!read.is_empty() && read.len() < 20, "{read:?}");
    let state = first.resume_state().expect("a Kafka source can resume");
    drop(first);
    let mut again = KafkaSource::open(&d, &ctx).unwrap();
    again.resume(&state).unwrap();
    read.extend(values(&mut again, None));
    read.sort_unstable();
    assert_eq!(read, (0..20).collect::<Vec<_>>());
    let e = again
        .resume(&serde_json::json!({"next_event": 3}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a Kafka position"), "{e}");
}
