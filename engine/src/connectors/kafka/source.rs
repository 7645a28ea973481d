//! The Kafka source: assigns the topics' partitions (or joins the group),
//! decodes each polled batch into one Arrow batch, routes malformed messages
//! by `format.on_error`, reports its position (per partition, the next
//! offset) and commits the positions the runtime hands back (see
//! [`super::offsets`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::catalog::StreamDef;
use crate::connectors::decode_pool::DecodePool;
use crate::connectors::kafka::consumer::{PartitionOffset, StartAt};
use crate::connectors::kafka::decode::{Decoded, KafkaDecoder};
use crate::connectors::kafka::offsets::OffsetTracker;
use crate::connectors::kafka::resets::{OutOfRange, Reset};
use crate::connectors::kafka::{
    KafkaConsumer, OnMalformed, RawBatch, SourceOptions, StartupMode, open_consumer,
};
use crate::connectors::{Position, Source, SourceContext, SourceCounters, SourceEvent};
use crate::error::ConnectorError;

/// How long broker look-ups at start may take.
const META_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads one or more topics.
pub struct KafkaSource {
    stream: String,
    options: SourceOptions,
    consumer: Box<dyn KafkaConsumer>,
    /// Polled batches decode on `SourceContext::decoders` threads.
    pool: DecodePool<KafkaDecoder>,
    topics: Arc<[String]>,
    tracker: OffsetTracker,
    /// The partitions read, with where they stop in bounded mode.
    partitions: Vec<(String, i32)>,
    /// Bounded mode: (topic index, partition) → end offset; removed when reached.
    remaining: Option<HashMap<(usize, i32), i64>>,
    dead_letters: Vec<String>,
    counters: Arc<SourceCounters>,
    shutdown: Arc<AtomicBool>,
}

impl KafkaSource {
    /// Connects, finds the partitions and where to start, and assigns them
    /// (or subscribes, with `consumer.subscribe`).
    ///
    /// # Errors
    /// Bad options, a broker that cannot be reached, a topic that does not exist.
    pub fn open(def: &StreamDef, ctx: &SourceContext) -> Result<Self, ConnectorError> {
        let options = SourceOptions::from_def(def)?;
        let consumer = open_consumer(&def.name, &options, ctx.batch_size)?;
        let topics: Arc<[String]> = options.topics.iter().cloned().collect();
        let mut partitions = Vec::new();
        for t in topics.iter() {
            let all = consumer.partitions_of(t, META_TIMEOUT)?;
            if let Some(only) = &options.only_partitions
                && let Some(missing) = only.iter().find(|p| !all.contains(p))
            {
                return Err(ConnectorError::Config {
                    stream: def.name.clone(),
                    message: format!(
                        "'scan.partitions' names partition {missing}, which topic '{t}' does not have (it has {})",
                        all.len()
                    ),
                });
            }
            for p in all {
                if options
                    .only_partitions
                    .as_ref()
                    .is_none_or(|o| o.contains(&p))
                {
                    partitions.push((t.clone(), p));
                }
            }
        }
        let mut source = Self {
            stream: def.name.clone(),
            pool: DecodePool::new(&def.name, ctx.decoders, || {
                KafkaDecoder::new(
                    &def.name,
                    def.schema.clone(),
                    ctx.projection.as_deref(),
                    &options.format,
                )
            })?,
            tracker: OffsetTracker::new(),
            remaining: None,
            dead_letters: Vec::new(),
            counters: ctx.counters.clone(),
            shutdown: ctx.shutdown.clone(),
            topics,
            partitions,
            consumer,
            options,
        };
        source.start()?;
        Ok(source)
    }

    /// Works out each partition's start (and end, when bounded) and starts reading.
    fn start(&mut self) -> Result<(), ConnectorError> {
        let mut marks = Vec::with_capacity(self.partitions.len());
        for (t, p) in &self.partitions {
            marks.push(self.consumer.watermarks(t, *p, META_TIMEOUT)?);
        }
        let committed = match self.options.startup {
            StartupMode::GroupOffsets => self.committed()?,
            _ => vec![None; self.partitions.len()],
        };
        let reset_latest = self.options.no_offset_at_end;
        let mut assign = Vec::with_capacity(self.partitions.len());
        let mut remaining = HashMap::new();
        for (i, (t, p)) in self.partitions.iter().enumerate() {
            let (low, high) = marks[i];
            let start = match (self.options.startup, committed[i]) {
                (StartupMode::Earliest, _) => low,
                (StartupMode::Latest, _) => high,
                (StartupMode::GroupOffsets, Some(c)) if (low..=high).contains(&c) => c,
                (StartupMode::GroupOffsets, Some(c)) => self.out_of_range(t, *p, c, (low, high))?,
                (StartupMode::GroupOffsets, None) if reset_latest => high,
                (StartupMode::GroupOffsets, None) => low,
            };
            self.tracker.started_at(t, *p, start);
            assign.push((t.clone(), *p, StartAt::Offset(start)));
            if start < high {
                let ti = self.topics.iter().position(|n| n == t).unwrap_or(0);
                remaining.insert((ti, *p), high);
            }
        }
        if self.options.bounded {
            self.remaining = Some(remaining);
        }
        if self.options.subscribe {
            // the group decides; positions come from its committed offsets
            self.consumer.subscribe(&self.options.topics)
        } else {
            self.consumer.assign(&assign)
        }
    }

    /// The group's committed offsets, read with a consumer of its own (a
    /// subscribed one may hang on drop after `committed`).
    fn committed(&self) -> Result<Vec<Option<i64>>, ConnectorError> {
        let err = |doing: &str, e| ConnectorError::Kafka {
            context: format!("stream '{}': {doing}", self.stream),
            source: e,
        };
        let mut config = self.options.config.clone();
        config.set("enable.auto.commit", "false");
        let probe: BaseConsumer = config
            .create()
            .map_err(|e| err("creating a consumer to read committed offsets", e))?;
        let mut tpl = TopicPartitionList::new();
        for (t, p) in &self.partitions {
            tpl.add_partition(t, *p);
        }
        let got = probe
            .committed_offsets(tpl, META_TIMEOUT)
            .map_err(|e| err("reading the group's committed offsets", e))?;
        Ok(self
            .partitions
            .iter()
            .map(
                |(t, p)| match got.find_partition(t, *p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => Some(o),
                    _ => None,
                },
            )
            .collect())
    }

    /// A committed offset outside its partition's log at start: where to
    /// start instead, per `'scan.out-of-range'`, said on stderr; or the
    /// error that stops the query.
    fn out_of_range(
        &self,
        topic: &str,
        partition: i32,
        committed: i64,
        (low, high): (i64, i64),
    ) -> Result<i64, ConnectorError> {
        let why = outside(committed, (low, high));
        let at = match self.options.out_of_range {
            OutOfRange::Fail => {
                return Err(ConnectorError::Config {
                    stream: self.stream.clone(),
                    message: format!(
                        "topic '{topic}' partition {partition}: the group's committed offset {committed} is {why}; Eddy stopped rather than read records again or skip them. Set 'scan.out-of-range' = 'earliest' (read the partition from {low}) or 'latest' (go on from {high}), or reset the group's offsets"
                    ),
                });
            }
            OutOfRange::Earliest => low,
            OutOfRange::Latest => high,
        };
        eprintln!(
            "eddy: stream '{}': topic '{topic}' partition {partition}: RESET from offset {committed} to {at}: the group's committed offset is {why} ('scan.out-of-range' = '{}')",
            self.stream,
            self.options.out_of_range.name()
        );
        Ok(at)
    }

    /// librdkafka reset a partition's position while reading: stop the
    /// query (`fail`, before any row read from the new position is handed
    /// on), or say so on stderr with both offsets and go on.
    fn reset(&mut self, r: &Reset) -> Result<(), ConnectorError> {
        let (low, high) = self
            .consumer
            .watermarks(&r.topic, r.partition, META_TIMEOUT)?;
        let from = r.from.map_or_else(
            || "an unknown offset".to_string(),
            |o| format!("offset {o}"),
        );
        let why = r.from.map_or_else(
            || format!("out of the partition's range ({low} to {high})"),
            |o| outside(o, (low, high)),
        );
        if self.options.out_of_range == OutOfRange::Fail {
            return Err(ConnectorError::Config {
                stream: self.stream.clone(),
                message: format!(
                    "topic '{}' partition {}: the position, {from}, is {why}; Eddy stopped rather than read records again or skip them. Set 'scan.out-of-range' = 'earliest' (read the partition from {low}) or 'latest' (go on from {high}) to go on past such a gap (librdkafka: {})",
                    r.topic,
                    r.partition,
                    crate::connectors::json::printable(&r.line)
                ),
            });
        }
        let to = r.to.unwrap_or(if r.to_end { high } else { low });
        eprintln!(
            "eddy: stream '{}': topic '{}' partition {}: RESET from {from} to offset {to}: the position was {why} ('scan.out-of-range' = '{}')",
            self.stream,
            r.topic,
            r.partition,
            self.options.out_of_range.name()
        );
        self.tracker.reset(&r.topic, r.partition, to);
        Ok(())
    }

    /// Bounded mode: drops messages at or past their partition's end and
    /// notes partitions that reached it.
    fn bound(&mut self, raw: &mut RawBatch) {
        let Some(remaining) = &mut self.remaining else {
            return;
        };
        let mut reached = Vec::new();
        raw.retain(|t, p, o| match remaining.get(&(t, p)) {
            Some(&end) if o < end => {
                if o + 1 >= end {
                    reached.push((t, p));
                }
                true
            }
            _ => false,
        });
        for k in reached {
            remaining.remove(&k);
        }
    }

    /// Handles the malformed messages of a decoded batch.
    fn malformed(&mut self, decoded: &Decoded, raw: &RawBatch) -> Result<(), ConnectorError> {
        if decoded.malformed.is_empty() {
            return Ok(());
        }
        SourceCounters::add(&self.counters.malformed, decoded.malformed.len() as u64);
        match self.options.on_malformed {
            OnMalformed::Skip => Ok(()),
            OnMalformed::Fail => {
                let m = &decoded.malformed[0];
                Err(ConnectorError::MalformedMessage {
                    topic: raw.topic_name(m.index).to_string(),
                    partition: raw.partition[m.index],
                    offset: raw.offset[m.index],
                    reason: m.reason.clone(),
                })
            }
            OnMalformed::DeadLetter => {
                let q = |s: &str| serde_json::Value::String(s.to_string());
                for m in &decoded.malformed {
                    let i = m.index;
                    let line = serde_json::json!({
                        "reason": format!("malformed message: {}", m.reason),
                        "stream": q(&self.stream),
                        "topic": q(raw.topic_name(i)),
                        "partition": raw.partition[i],
                        "offset": raw.offset[i],
                        "timestamp": raw.timestamp[i],
                        "key": raw.key(i).map(|k| String::from_utf8_lossy(k).into_owned()),
                    });
                    let mut line = line;
                    // binary values travel base64-encoded; JSON as its text
                    let value = raw.has_value[i].then(|| raw.value(i));
                    if self.options.format.is_binary() {
                        line["value_base64"] =
                            serde_json::json!(value.map(crate::connectors::dead_letter::base64));
                    } else {
                        line["value"] = serde_json::json!(
                            value.map(|v| String::from_utf8_lossy(v).into_owned())
                        );
                    }
                    self.dead_letters.push(line.to_string());
                }
                Ok(())
            }
        }
    }

    /// Records how far each partition has been read.
    fn track(&mut self, raw: &RawBatch) {
        // one (topic, partition) run after another: record each run's last offset
        for i in 0..raw.len() {
            let run_ends = i + 1 == raw.len()
                || raw.topic[i + 1] != raw.topic[i]
                || raw.partition[i + 1] != raw.partition[i];
            if run_ends {
                let topic = &self.topics[raw.topic[i] as usize];
                self.tracker.read(topic, raw.partition[i], raw.offset[i]);
            }
        }
    }
}

/// Why `offset` is outside a partition holding `low..high`.
fn outside(offset: i64, (low, high): (i64, i64)) -> String {
    if offset > high {
        format!(
            "past the partition's end ({high}): the broker lost records it had acknowledged, or the topic was re-created"
        )
    } else if offset < low {
        format!(
            "before the partition's first offset ({low}): retention deleted records not yet read"
        )
    } else {
        format!("out of the partition's range ({low} to {high})")
    }
}

/// A Kafka source's resume state: per partition, the next offset, and the
/// consumer group (a transactional sink commits the offsets to it with the
/// output).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Offsets {
    offsets: Vec<(String, i32, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<String>,
}

impl Source for KafkaSource {
    /// `{"offsets": [[topic, partition, next offset], ...], "group": g}`.
    fn resume_state(&self) -> Option<serde_json::Value> {
        serde_json::to_value(Offsets {
            offsets: self.tracker.position().splits,
            group: Some(self.options.group_id.clone()),
        })
        .ok()
    }

    /// Reads each partition from the state's offset instead of where the
    /// startup mode said (partitions it does not name keep theirs).
    fn resume(&mut self, state: &serde_json::Value) -> Result<(), ConnectorError> {
        let bad = |why: String| ConnectorError::Config {
            stream: self.stream.clone(),
            message: format!("cannot resume from the checkpoint: {why}"),
        };
        if self.options.subscribe {
            return Err(bad(
                "a subscribed source's partitions are the group's to assign; resume it without 'consumer.subscribe'".into(),
            ));
        }
        let Offsets { offsets, .. } = serde_json::from_value(state.clone())
            .map_err(|e| bad(format!("not a Kafka position: {e}")))?;
        let now = self.tracker.position().splits;
        let offset_in = |splits: &[(String, i32, i64)], t: &str, p: i32| {
            splits
                .iter()
                .find(|(st, sp, _)| st == t && *sp == p)
                .map(|s| s.2)
        };
        let mut assign = Vec::with_capacity(self.partitions.len());
        for (t, p) in &self.partitions {
            let at = match offset_in(&offsets, t, *p) {
                Some(o) => {
                    self.tracker.reset(t, *p, o);
                    o
                }
                None => offset_in(&now, t, *p).unwrap_or(0),
            };
            assign.push((t.clone(), *p, StartAt::Offset(at)));
            if let Some(remaining) = &mut self.remaining {
                let ti = self.topics.iter().position(|n| n == t).unwrap_or(0);
                if remaining.get(&(ti, *p)).is_some_and(|&end| at >= end) {
                    remaining.remove(&(ti, *p));
                }
            }
        }
        self.consumer.assign(&assign)
    }

    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        let ended = self.remaining.as_ref().is_some_and(HashMap::is_empty);
        // keep the decoders fed; a stop reads nothing more
        while !ended && !self.shutdown.load(Ordering::Relaxed) && self.pool.has_room() {
            let mut raw = self
                .pool
                .spare()
                .unwrap_or_else(|| RawBatch::new(self.topics.clone()));
            raw.clear();
            // wait for the broker only when no decoded rows are coming
            let wait = if self.pool.is_idle() {
                Duration::from_millis(100)
            } else {
                Duration::ZERO
            };
            self.consumer.next_batch(wait, &mut raw)?;
            // before any row read after a reset is handed on
            for reset in self.consumer.take_resets() {
                self.reset(&reset)?;
            }
            self.bound(&mut raw);
            if raw.is_empty() {
                self.pool.recycle(raw);
                break;
            }
            SourceCounters::add(&self.counters.bytes, raw.values.len() as u64);
            self.pool.submit(raw);
            if self.pool.ready() {
                break;
            }
        }
        let Some(result) = self.pool.next() else {
            return Ok(if ended {
                SourceEvent::End
            } else {
                SourceEvent::Idle
            });
        };
        let (decoded, raw) = result?;
        // the position moves only with rows handed on
        self.malformed(&decoded, &raw)?;
        self.track(&raw);
        self.pool.recycle(raw);
        SourceCounters::add(&self.counters.records, decoded.batch.num_rows() as u64);
        Ok(SourceEvent::Batch(decoded.batch))
    }

    fn partitions(&self) -> Vec<(String, i32)> {
        self.partitions.clone()
    }

    fn checkpoint_interval(&self) -> Option<Duration> {
        Some(self.options.commit_interval)
    }

    fn position(&self) -> Option<Position> {
        Some(self.tracker.position())
    }

    fn commit(&mut self, position: &Position, last: bool) -> Result<(), ConnectorError> {
        let offsets: Vec<PartitionOffset> = self
            .tracker
            .commit(position)
            .into_iter()
            .map(|(topic, partition, offset)| PartitionOffset {
                topic,
                partition,
                offset,
            })
            .collect();
        self.consumer.commit(&offsets, last)
    }

    fn take_dead_letters(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dead_letters)
    }
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
