//! The consumer contract every tier implements, the raw batch it fills, and
//! the factory that builds the tier a stream asks for.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::BorrowedMessage;

use crate::connectors::kafka::SourceOptions;
use crate::connectors::kafka::tiers;
use crate::error::ConnectorError;

/// How a source reads from Kafka (`'consumer.tier'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// `BaseConsumer::poll` on the source thread, one message per poll.
    Standard,
    /// `BaseConsumer::poll` on the source thread, gathering up to
    /// `consumer.batch_size` messages or `consumer.linger` per batch.
    Buffered,
    /// A thread of its own polls and fills whole batches, handed to the
    /// source thread over a bounded channel (`consumer.queue`).
    Dedicated,
    /// `StreamConsumer` driven by a tokio runtime, batched like `buffered`.
    Legacy,
}

impl Tier {
    /// The option value.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Standard => "standard",
            Tier::Buffered => "buffered",
            Tier::Dedicated => "dedicated",
            Tier::Legacy => "legacy",
        }
    }
}

/// Where an assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// This offset.
    Offset(i64),
}

/// Messages copied out of librdkafka, column by column: values end to end
/// (each followed by `\n`) and per-message metadata.
#[derive(Debug, Default, Clone)]
pub struct RawBatch {
    /// The topics the consumer reads; `topic` indexes into it.
    pub topic_names: Arc<[String]>,
    /// Message values, each followed by a `\n`.
    pub values: Vec<u8>,
    /// Where each value ends in `values` (exclusive, before its `\n`).
    pub value_ends: Vec<u32>,
    /// Whether the message had a value at all (false: a tombstone).
    pub has_value: Vec<bool>,
    /// Index of the message's topic in `topic_names`.
    pub topic: Vec<u16>,
    /// Partition of each message.
    pub partition: Vec<i32>,
    /// Offset of each message.
    pub offset: Vec<i64>,
    /// Message timestamps (ms; `None` when the broker gave none).
    pub timestamp: Vec<Option<i64>>,
    /// Keys end to end.
    pub keys: Vec<u8>,
    /// Where each key ends in `keys`.
    pub key_ends: Vec<u32>,
    /// Whether the message had a key.
    pub has_key: Vec<bool>,
}

impl RawBatch {
    /// An empty batch for messages of `topics`.
    pub fn new(topics: Arc<[String]>) -> Self {
        Self {
            topic_names: topics,
            ..Self::default()
        }
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.offset.len()
    }

    /// Whether it holds no message.
    pub fn is_empty(&self) -> bool {
        self.offset.is_empty()
    }

    /// Empties it, keeping its allocations.
    pub fn clear(&mut self) {
        self.values.clear();
        self.value_ends.clear();
        self.has_value.clear();
        self.topic.clear();
        self.partition.clear();
        self.offset.clear();
        self.timestamp.clear();
        self.keys.clear();
        self.key_ends.clear();
        self.has_key.clear();
    }

    /// Value `i` (empty for a tombstone).
    pub fn value(&self, i: usize) -> &[u8] {
        let start = if i == 0 {
            0
        } else {
            self.value_ends[i - 1] as usize + 1
        };
        &self.values[start..self.value_ends[i] as usize]
    }

    /// Key `i`, if the message had one.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        let start = if i == 0 {
            0
        } else {
            self.key_ends[i - 1] as usize
        };
        self.has_key[i].then(|| &self.keys[start..self.key_ends[i] as usize])
    }

    /// Topic name of message `i`.
    pub fn topic_name(&self, i: usize) -> &str {
        self.topic_names
            .get(self.topic[i] as usize)
            .map_or("", String::as_str)
    }

    /// Appends one message with its metadata.
    pub fn push(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        let t = self
            .topic_names
            .iter()
            .position(|n| n == topic)
            .unwrap_or(0);
        self.push_indexed(t as u16, partition, offset, timestamp, key, value);
    }

    /// [`RawBatch::push`] with the topic's index in `topic_names`.
    fn push_indexed(
        &mut self,
        t: u16,
        partition: i32,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        self.topic.push(t);
        self.partition.push(partition);
        self.offset.push(offset);
        self.timestamp.push(timestamp);
        self.has_value.push(value.is_some());
        self.values.extend_from_slice(value.unwrap_or_default());
        self.value_ends.push(self.values.len() as u32);
        self.values.push(b'\n');
        self.has_key.push(key.is_some());
        self.keys.extend_from_slice(key.unwrap_or_default());
        self.key_ends.push(self.keys.len() as u32);
    }

    /// Appends a message polled from librdkafka.
    pub fn push_message(&mut self, m: &BorrowedMessage<'_>) {
        // one topic: no need to read (and check) its name per message
        let t = if self.topic_names.len() == 1 {
            0
        } else {
            let name = m.topic();
            self.topic_names.iter().position(|n| n == name).unwrap_or(0) as u16
        };
        self.push_indexed(
            t,
            m.partition(),
            m.offset(),
            m.timestamp().to_millis(),
            m.key(),
            m.payload(),
        );
    }

    /// Keeps only the messages for which `keep(partition, offset)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(usize, i32, i64) -> bool) {
        let old = std::mem::replace(self, RawBatch::new(self.topic_names.clone()));
        for i in 0..old.len() {
            if keep(old.topic[i] as usize, old.partition[i], old.offset[i]) {
                self.push(
                    old.topic_name(i),
                    old.partition[i],
                    old.offset[i],
                    old.timestamp[i],
                    old.key(i),
                    old.has_value[i].then(|| old.value(i)),
                );
            }
        }
    }
}

/// A topic partition and an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset (for a commit: the next offset to read).
    pub offset: i64,
}

/// A Kafka consumer as the source sees it, whatever the tier.
///
/// Every method that talks to the broker returns [`ConnectorError::Kafka`]
/// naming what was being done on failure.
pub trait KafkaConsumer: Send {
    /// Joins the consumer group for `topics`; the group assigns partitions.
    ///
    /// # Errors
    /// librdkafka refuses the subscription.
    fn subscribe(&mut self, topics: &[String]) -> Result<(), ConnectorError>;

    /// Reads exactly these partitions from these positions.
    ///
    /// # Errors
    /// librdkafka refuses the assignment.
    fn assign(&mut self, partitions: &[(String, i32, StartAt)]) -> Result<(), ConnectorError>;

    /// Appends the next messages to `out`, waiting at most `timeout` for the
    /// first; returns with `out` unchanged when none came.
    ///
    /// # Errors
    /// A fatal consumer error (unknown topic, authorisation, a broken broker).
    fn next_batch(&mut self, timeout: Duration, out: &mut RawBatch) -> Result<(), ConnectorError>;

    /// The offset resets librdkafka made since the last call (a position
    /// outside its partition's log; see `resets.rs`).
    fn take_resets(&mut self) -> Vec<crate::connectors::kafka::resets::Reset>;

    /// Commits `offsets` for the group (each the next offset to read);
    /// `sync` waits for the broker's answer.
    ///
    /// # Errors
    /// The commit failed (only reported when `sync`).
    fn commit(&mut self, offsets: &[PartitionOffset], sync: bool) -> Result<(), ConnectorError>;

    /// The partitions of `topic`.
    ///
    /// # Errors
    /// The topic does not exist or the broker cannot be reached.
    fn partitions_of(&self, topic: &str, timeout: Duration) -> Result<Vec<i32>, ConnectorError>;

    /// The (low, high) offsets of a partition.
    ///
    /// # Errors
    /// The broker cannot be reached.
    fn watermarks(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> Result<(i64, i64), ConnectorError>;
}

/// Builds the consumer tier `options` asks for.
///
/// # Errors
/// librdkafka rejects the configuration (a bad `properties.*` value).
pub fn open_consumer(
    stream: &str,
    options: &SourceOptions,
    batch_size: usize,
) -> Result<Box<dyn KafkaConsumer>, ConnectorError> {
    let settings = tiers::Settings {
        stream: stream.to_string(),
        topics: options.topics.iter().cloned().collect(),
        batch_size: if options.batch_size == 0 {
            batch_size.max(1)
        } else {
            options.batch_size
        },
        linger: options.linger,
        queue: options.queue,
    };
    Ok(match options.tier {
        Tier::Standard => Box::new(tiers::Polled::new(&options.config, settings, false)?),
        Tier::Buffered => Box::new(tiers::Polled::new(&options.config, settings, true)?),
        Tier::Dedicated => Box::new(tiers::Dedicated::new(&options.config, settings)?),
        Tier::Legacy => Box::new(tiers::Legacy::new(&options.config, settings)?),
    })
}
