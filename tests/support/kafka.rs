//! Kafka brokers for the tests: librdkafka's in-process mock cluster, or
//! the external broker `.ci/run` starts (`EDDY_TEST_KAFKA`), with helpers to
//! create topics, produce records and read a topic back.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// The environment variable with the external broker's address.
pub const BROKER_ENV: &str = "EDDY_TEST_KAFKA";

/// A broker to test against.
pub enum Broker {
    /// librdkafka's mock cluster, in this process.
    Mock(MockCluster<'static, DefaultProducerContext>),
    /// A broker process at this address.
    External(String),
}

/// A record to produce: partition, key, value as bytes.
pub type BytesRecord = (i32, Option<String>, Option<Vec<u8>>);

/// A record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key as text.
    pub key: Option<String>,
    /// Value as text (empty for a tombstone).
    pub value: String,
    /// Value as bytes (a binary format's).
    pub bytes: Vec<u8>,
    /// Whether it has no value (a tombstone: its key is deleted).
    pub tombstone: bool,
}

impl Broker {
    /// A fresh one-broker mock cluster.
    pub fn mock() -> Self {
        Broker::Mock(MockCluster::new(1).expect("start the mock cluster"))
    }

    /// The external broker, or `None` (with the reason printed) when
    /// `EDDY_TEST_KAFKA` is not set.
    pub fn external(test: &str) -> Option<Self> {
        match std::env::var(BROKER_ENV) {
            Ok(addr) if !addr.trim().is_empty() => Some(Broker::External(addr)),
            _ => {
                eprintln!(
                    "skipped {test}: {BROKER_ENV} is not set (run `eval \"$(scripts/kafka-broker.sh)\"` first; .ci/run does)"
                );
                None
            }
        }
    }

    /// `host:port` to bootstrap from.
    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Mock(m) => m.bootstrap_servers(),
            Broker::External(a) => a.clone(),
        }
    }

    /// Creates `topic` with `partitions` partitions (a unique name per test
    /// is the caller's business).
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        match self {
            Broker::Mock(m) => m
                .create_topic(topic, partitions, 1)
                .expect("create a topic on the mock"),
            Broker::External(addr) => {
                let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", addr)
                    .create()
                    .expect("admin client");
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("runtime");
                let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
                let res = rt
                    .block_on(admin.create_topics(&[new], &AdminOptions::new()))
                    .expect("create_topics");
                for r in res {
                    r.expect("topic created");
                }
                // wait until the metadata shows every partition
                let c = consumer(addr, "eddy-test-meta");
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(1))
                        && md.topics().iter().any(|t| {
                            t.name() == topic && t.partitions().len() == partitions as usize
                        })
                    {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                panic!("topic {topic} did not appear");
            }
        }
    }

    /// Produces `(partition, key, value)` records with the current time as
    /// their timestamp, and waits until all are acknowledged.
    pub fn produce(&self, topic: &str, records: &[(i32, Option<String>, Option<String>)]) {
        produce_to(&self.bootstrap(), topic, records);
    }

    /// `values` to partition 0, without keys, in order.
    pub fn produce_values(&self, topic: &str, values: Vec<Vec<u8>>) {
        let records: Vec<BytesRecord> = values.into_iter().map(|v| (0, None, Some(v))).collect();
        self.produce_bytes(topic, &records);
    }

    /// As [`Broker::produce`], with values as bytes (a binary format's).
    pub fn produce_bytes(&self, topic: &str, records: &[BytesRecord]) {
        produce_bytes_to(&self.bootstrap(), topic, records);
    }

    /// Reads `topic` from the beginning until `expected` records (with
    /// `usize::MAX`, every record it has now) or `timeout`.
    pub fn read_topic(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<Record> {
        let c = consumer(&self.bootstrap(), "eddy-test-reader");
        let md = c
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .expect("metadata");
        let parts = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        let mut tpl = TopicPartitionList::new();
        for p in 0..parts as i32 {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("tpl");
        }
        c.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let deadline = Instant::now() + timeout;
        let poll = |wait_ms: u64, out: &mut Vec<Record>| {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(wait_ms)) {
                out.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    bytes: m.payload().unwrap_or_default().to_vec(),
                    tombstone: m.payload().is_none(),
                });
            }
        };
        // `usize::MAX`: up to each partition's end offset now
        let ends: Option<i64> = (expected == usize::MAX).then(|| {
            (0..parts as i32)
                .map(|p| {
                    c.fetch_watermarks(topic, p, Duration::from_secs(5))
                        .map_or(0, |(lo, hi)| hi - lo)
                })
                .sum()
        });
        let expected = ends.map_or(expected, |n| n as usize);
        while out.len() < expected && Instant::now() < deadline {
            poll(100, &mut out);
        }
        // anything beyond what was expected is a bug worth seeing
        let extra = Instant::now() + Duration::from_millis(300);
        while Instant::now() < extra {
            poll(50, &mut out);
        }
        out
    }
}

/// A consumer with `group`, for look-ups and reading back.
fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// Commits `offset` for `group` on partition 0 of `topic`, as a consumer
/// of that group would (the broker takes an offset past the log's end).
pub fn commit_offset(bootstrap: &str, group: &str, topic: &str, offset: i64) {
    let c = consumer(bootstrap, group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("partition");
    c.commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Produces records to `topic` at `bootstrap` and waits for every acknowledgement.
pub fn produce_to(bootstrap: &str, topic: &str, records: &[(i32, Option<String>, Option<String>)]) {
    let records: Vec<BytesRecord> = records
        .iter()
        .map(|(p, k, v)| (*p, k.clone(), v.as_ref().map(|v| v.as_bytes().to_vec())))
        .collect();
    produce_bytes_to(bootstrap, topic, &records);
}

/// Produces records with byte values to `topic` and waits for every acknowledgement.
pub fn produce_bytes_to(bootstrap: &str, topic: &str, records: &[BytesRecord]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let ts = now_ms();
    for (p, k, v) in records {
        let mut r = BaseRecord::<str, [u8]>::to(topic)
            .partition(*p)
            .timestamp(ts);
        if let Some(k) = k {
            r = r.key(k.as_str());
        }
        if let Some(v) = v {
            r = r.payload(v.as_slice());
        }
        let mut r = r;
        loop {
            match producer.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("every record acknowledged");
}

/// A unique topic name for one test.
pub fn topic_name(test: &str) -> String {
    format!("{test}-{}-{}", std::process::id(), now_ms() % 1_000_000)
}
