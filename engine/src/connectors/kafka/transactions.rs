//! Exactly-once output of the Kafka sink (`'sink.delivery' =
//! 'exactly-once'`): the rows of each checkpoint epoch are written in one
//! Kafka transaction, committed once the checkpoint is durable (the Kafka
//! Streams order: snapshot, then commit). The transaction also commits
//!
//! * a *marker* offset in the sink's own consumer group (named after its
//!   `transactional.id` prefix) on partition 0 of the output topic: offset = the
//!   checkpoint id, metadata `eddy checkpoint <id> run <run>` (the run
//!   whose checkpoint directory holds it). A restart reads it to
//!   know which checkpoint the visible output belongs to and resumes from
//!   that one: a crash between a checkpoint and its commit re-runs the
//!   epoch; the aborted transaction's rows are never visible to
//!   `read_committed` readers;
//! * the Kafka sources' offsets at the barrier in their own consumer groups,
//!   with the same metadata.
//!
//! Each run has a `transactional.id` of its own (`<prefix>-<run>`), and
//! registers it in the checkpoint store before its first transaction. At
//! start, `init_transactions` on every other registered run's id fences
//! that run (a zombie) and aborts its open transaction; a fenced
//! instance stops with a message that says so.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::checkpoint::CheckpointRef;
use crate::error::ConnectorError;

/// The metadata committed with each offset of a transaction.
fn metadata(id: u64, run: &str) -> String {
    format!("eddy checkpoint {id} run {run}")
}

/// The transactional side of a Kafka sink.
pub(super) struct Transactions {
    stream: String,
    topic: String,
    /// The producer's `transactional.id` (one per run).
    pub id: String,
    /// The run whose checkpoints the commits name.
    run: String,
    /// Client settings (bootstrap servers, security) for the consumers
    /// whose group metadata the commits need.
    base: ClientConfig,
    marker: BaseConsumer,
    /// A consumer per source group, for its group metadata.
    groups: HashMap<String, BaseConsumer>,
    timeout: Duration,
    open: bool,
}

impl Transactions {
    /// Ready for `topic` with `transactional.id` `id`, committing its
    /// markers in group `group`; `base` holds the sink's `properties.*`.
    pub fn new(
        stream: &str,
        topic: &str,
        (id, group): (String, &str),
        run: &str,
        base: ClientConfig,
        timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        let marker = consumer(&base, group, stream)?;
        Ok(Self {
            stream: stream.to_string(),
            topic: topic.to_string(),
            id,
            run: run.to_string(),
            base,
            marker,
            groups: HashMap::new(),
            timeout,
            open: false,
        })
    }

    fn error(&self, doing: &str, e: KafkaError) -> ConnectorError {
        let fenced = matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Fenced | RDKafkaErrorCode::InvalidProducerEpoch)
        ) || e.to_string().to_ascii_lowercase().contains("fenced");
        let reason = if fenced {
            format!(
                "{doing}: fenced: a newer run of this query (or of this task of it) started and took over from this one, whose transactional.id is '{}'; this one stops (its open transaction is aborted, so no row is written twice)",
                self.id
            )
        } else {
            format!("{doing} (transactional.id '{}'): {e}", self.id)
        };
        ConnectorError::Delivery {
            stream: self.stream.clone(),
            topic: self.topic.clone(),
            reason,
        }
    }

    /// Fences older instances and aborts their open transaction; returns
    /// the checkpoint the last committed output belongs to (id 0: none).
    pub fn init<P: Producer<C>, C: rdkafka::producer::ProducerContext>(
        &mut self,
        producer: &P,
    ) -> Result<CheckpointRef, ConnectorError> {
        producer
            .init_transactions(self.timeout)
            .map_err(|e| self.error("initialising transactions", e))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, 0);
        let committed = self
            .marker
            .committed_offsets(tpl, self.timeout)
            .map_err(|e| self.error("reading the last committed checkpoint", e))?;
        let last = committed
            .elements()
            .first()
            .and_then(|e| match e.offset() {
                Offset::Offset(o) if e.metadata().starts_with("eddy checkpoint") => {
                    let run = e.metadata().split_once(" run ").map(|(_, r)| r.to_string());
                    Some(CheckpointRef {
                        id: o.max(0) as u64,
                        run,
                    })
                }
                _ => None,
            })
            .unwrap_or(CheckpointRef { id: 0, run: None });
        Ok(last)
    }

    /// Opens the transaction of the next epoch.
    pub fn begin<P: Producer<C>, C: rdkafka::producer::ProducerContext>(
        &mut self,
        producer: &P,
    ) -> Result<(), ConnectorError> {
        producer
            .begin_transaction()
            .map_err(|e| self.error("beginning a transaction", e))?;
        self.open = true;
        Ok(())
    }

    /// Commits the open transaction (every row written is delivered) as
    /// checkpoint `id`, with the sources' offsets, and opens the next one.
    pub fn commit<P: Producer<C>, C: rdkafka::producer::ProducerContext>(
        &mut self,
        producer: &P,
        id: u64,
        sources: &BTreeMap<String, serde_json::Value>,
    ) -> Result<(), ConnectorError> {
        let mut marker = TopicPartitionList::new();
        marker
            .add_partition_offset(&self.topic, 0, Offset::Offset(id as i64))
            .map_err(|e| self.error("building the checkpoint marker", e))?;
        if let Some(mut p) = marker.find_partition(&self.topic, 0) {
            p.set_metadata(metadata(id, &self.run));
        }
        let meta = self
            .marker
            .group_metadata()
            .ok_or_else(|| self.error("reading the marker group", KafkaError::NoMessageReceived))?;
        producer
            .send_offsets_to_transaction(&marker, &meta, self.timeout)
            .map_err(|e| self.error("committing the checkpoint marker", e))?;
        for (group, offsets) in source_offsets(sources, &metadata(id, &self.run)) {
            if !self.groups.contains_key(&group) {
                let c = consumer(&self.base, &group, &self.stream)?;
                self.groups.insert(group.clone(), c);
            }
            let meta = self.groups[&group].group_metadata().ok_or_else(|| {
                self.error("reading a source group", KafkaError::NoMessageReceived)
            })?;
            producer
                .send_offsets_to_transaction(&offsets, &meta, self.timeout)
                .map_err(|e| self.error("committing the source offsets", e))?;
        }
        producer
            .commit_transaction(self.timeout)
            .map_err(|e| self.error("committing the transaction", e))?;
        self.open = false;
        self.begin(producer)
    }

    /// Aborts the open transaction, if any (its rows are never visible).
    pub fn abort<P: Producer<C>, C: rdkafka::producer::ProducerContext>(&mut self, producer: &P) {
        if std::mem::replace(&mut self.open, false) {
            let _ = producer.abort_transaction(self.timeout);
        }
    }
}

/// The Kafka sources' offsets in a checkpoint, per consumer group, each
/// with the commit's metadata `meta`.
fn source_offsets(
    sources: &BTreeMap<String, serde_json::Value>,
    meta: &str,
) -> Vec<(String, TopicPartitionList)> {
    let mut out = Vec::new();
    for state in sources.values() {
        let (Some(group), Some(list)) = (
            state.get("group").and_then(|g| g.as_str()),
            state.get("offsets").and_then(|o| o.as_array()),
        ) else {
            continue;
        };
        let mut tpl = TopicPartitionList::new();
        for e in list {
            let (Some(t), Some(p), Some(o)) = (
                e.get(0).and_then(|v| v.as_str()),
                e.get(1).and_then(|v| v.as_i64()),
                e.get(2).and_then(|v| v.as_i64()),
            ) else {
                continue;
            };
            if tpl
                .add_partition_offset(t, p as i32, Offset::Offset(o))
                .is_ok()
                && let Some(mut el) = tpl.find_partition(t, p as i32)
            {
                el.set_metadata(meta);
            }
        }
        if tpl.count() > 0 {
            out.push((group.to_string(), tpl));
        }
    }
    out
}

/// A consumer of `group` that reads nothing: its group metadata and
/// committed offsets are what a transaction needs.
fn consumer(
    base: &ClientConfig,
    group: &str,
    stream: &str,
) -> Result<BaseConsumer, ConnectorError> {
    let mut c = base.clone();
    for k in [
        "transactional.id",
        "enable.idempotence",
        "linger.ms",
        "acks",
    ] {
        c.remove(k);
    }
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| ConnectorError::Kafka {
            context: format!("stream '{stream}': creating a client for group '{group}'"),
            source: e,
        })
}
