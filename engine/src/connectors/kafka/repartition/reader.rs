//! Stage 2's start: a [`Source`] reading a repartition topic's rows and
//! turning its watermark records into the stage's watermark: a source
//! partition's watermark is the smallest read for it from every
//! repartition partition this reader consumes (each writer wrote it to all
//! of them after its rows), and the stage's the smallest over the source's
//! partitions, so no row can be overtaken by a watermark written after it.
//! Once every source partition's watermark is the end of time (`i64::MAX`:
//! stage 1's input ended), the source ends.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::marks::Marks;
use super::{Record, RepartitionTopic, decode};
use crate::connectors::{Source, SourceEvent};
use crate::error::ConnectorError;

/// Reads a repartition topic for stage 2.
pub struct RepartitionReader {
    stream: String,
    topic: RepartitionTopic,
    schema: SchemaRef,
    consumer: BaseConsumer,
    /// The source's partitions, whose watermarks combine (by slot).
    sources: Vec<(String, i32)>,
    /// The watermark records read, combined.
    marks: Marks,
    /// Per repartition partition read, the next offset.
    next: HashMap<i32, i64>,
    ready: VecDeque<SourceEvent>,
    ended: bool,
}

impl RepartitionReader {
    /// Reads partitions `partitions` of `topic` (rows of `schema`) from the
    /// start, combining the watermarks of the source partitions `sources`;
    /// `config` holds the librdkafka settings and `group` the consumer
    /// group positions are committed in.
    ///
    /// # Errors
    /// A consumer librdkafka will not create.
    pub fn new(
        stream: &str,
        (topic, partitions): (RepartitionTopic, &[i32]),
        schema: SchemaRef,
        sources: Vec<(String, i32)>,
        config: &ClientConfig,
        group: &str,
    ) -> Result<Self, ConnectorError> {
        let mut config = config.clone();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest");
        let consumer: BaseConsumer = config.create().map_err(|source| ConnectorError::Kafka {
            context: format!("stream '{stream}': creating the repartition consumer"),
            source,
        })?;
        let mut reader = Self {
            stream: stream.to_string(),
            marks: Marks::new(sources.len(), partitions),
            next: partitions.iter().map(|&p| (p, 0)).collect(),
            topic,
            schema,
            consumer,
            sources,
            ready: VecDeque::new(),
            ended: false,
        };
        reader.assign()?;
        Ok(reader)
    }

    /// Assigns the partitions read at their next offsets.
    fn assign(&mut self) -> Result<(), ConnectorError> {
        let mut tpl = TopicPartitionList::new();
        for (&p, &o) in &self.next {
            tpl.add_partition_offset(&self.topic.name, p, Offset::Offset(o))
                .map_err(|e| self.kafka("assigning the repartition partitions", e))?;
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| self.kafka("assigning the repartition partitions", e))
    }

    fn kafka(&self, doing: &str, source: rdkafka::error::KafkaError) -> ConnectorError {
        ConnectorError::Kafka {
            context: format!("stream '{}': {doing} of '{}'", self.stream, self.topic.name),
            source,
        }
    }

    /// Folds in a watermark record read from partition `partition`; the
    /// stage's watermark when it advanced.
    fn mark(
        &mut self,
        partition: i32,
        from: &[(String, i32)],
        watermark: i64,
        idle: bool,
    ) -> Option<i64> {
        let slots: Vec<usize> = from
            .iter()
            .filter_map(|f| self.sources.iter().position(|s| s == f))
            .collect();
        self.marks.fold(partition, &slots, watermark, idle)
    }
}

impl Source for RepartitionReader {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        if let Some(e) = self.ready.pop_front() {
            return Ok(e);
        }
        if self.ended {
            return Ok(SourceEvent::End);
        }
        let Some(message) = self.consumer.poll(Duration::from_millis(20)) else {
            return Ok(SourceEvent::Idle);
        };
        let m = message.map_err(|e| self.kafka("reading", e))?;
        let (partition, offset) = (m.partition(), m.offset());
        self.next.insert(partition, offset + 1);
        let record = decode(
            m.payload().unwrap_or_default(),
            (&self.topic.name, partition, offset),
        )?;
        Ok(match record {
            Record::Rows(batch) => {
                if batch.schema().fields() != self.schema.fields() {
                    return Err(ConnectorError::MalformedMessage {
                        topic: self.topic.name.clone(),
                        partition,
                        offset,
                        reason: format!(
                            "rows of another query (columns {:?}): the repartition topic is shared with another plan; delete it or name another",
                            batch
                                .schema()
                                .fields()
                                .iter()
                                .map(|f| f.name())
                                .collect::<Vec<_>>()
                        ),
                    });
                }
                SourceEvent::Batch(batch)
            }
            Record::Watermark {
                from,
                watermark,
                idle,
            } => match self.mark(partition, &from, watermark, idle) {
                Some(i64::MAX) => {
                    self.ended = true;
                    SourceEvent::Watermark(i64::MAX)
                }
                Some(w) => SourceEvent::Watermark(w),
                None => SourceEvent::Idle,
            },
        })
    }

    fn resume_state(&self) -> Option<serde_json::Value> {
        let mut offsets: Vec<(i32, i64)> = self.next.iter().map(|(p, o)| (*p, *o)).collect();
        offsets.sort_unstable();
        Some({
            let (marks, idle) = self.marks.state();
            serde_json::json!({ "offsets": offsets, "watermark": self.marks.current, "marks": marks, "idle": idle })
        })
    }

    fn resume(&mut self, state: &serde_json::Value) -> Result<(), ConnectorError> {
        for e in state["offsets"].as_array().into_iter().flatten() {
            if let (Some(p), Some(o)) = (
                e.get(0).and_then(|v| v.as_i64()),
                e.get(1).and_then(|v| v.as_i64()),
            ) {
                self.next.insert(p as i32, o);
            }
        }
        if let Some(w) = state["watermark"].as_i64() {
            self.marks.current = w;
        }
        self.marks.restore(&state["marks"], &state["idle"]);
        self.assign()
    }
}
