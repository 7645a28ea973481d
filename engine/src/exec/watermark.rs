//! Watermark generation: event time as `max(event time seen) − delay`, per
//! source partition for a partitioned source, with an idle timeout.
//!
//! The source stage of a running query owns the [`WatermarkGenerator`] (as
//! Flink generates watermarks per split): it sees the source's partitions
//! and its silences, so no operator needs to. [`WatermarkOp`] wraps the same
//! generator as an operator for a query run on one thread
//! ([`crate::exec::pipeline::Pipeline::build`]: benches and unit tests).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, TimestampMillisecondArray};
use arrow::datatypes::{Int32Type, SchemaRef, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;

use crate::error::{ExecError, ExecResult};
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Collector, Message, Operator, OperatorState};
use crate::plan::explain::Params;
use crate::plan::physical::{BuildContext, NodeKind};
use crate::types::format_interval_ms;

/// Tracks event time: watermark = largest `column` seen − `delay_ms`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WatermarkNode {
    /// Event-time column.
    pub column: usize,
    /// Its name.
    pub name: String,
    /// Delay in ms.
    pub delay_ms: i64,
    /// After this long without input, event time follows the wall clock (ms).
    pub idle_timeout_ms: Option<i64>,
    /// The `_topic` and `_partition` columns of a partitioned source
    /// (Kafka): the watermark is then the minimum of per-partition
    /// watermarks, a partition silent past `idle_timeout` not counting.
    pub per_partition: Option<(usize, usize)>,
}

impl WatermarkNode {
    /// The generator this node describes (run by the source stage).
    pub(crate) fn generator(&self, metrics: &Arc<QueryMetrics>) -> WatermarkGenerator {
        let g = WatermarkGenerator::new(self.column, self.delay_ms, metrics.clone());
        match self.per_partition {
            Some((topic, partition)) => g.per_partition(topic, partition, self.idle_timeout_ms),
            None => g,
        }
    }
}

impl NodeKind for WatermarkNode {
    fn explain(&self) -> (&'static str, Params) {
        let mut params = vec![
            ("column".to_string(), self.name.clone()),
            ("delay".to_string(), format_interval_ms(self.delay_ms)),
        ];
        if self.per_partition.is_some() {
            params.push(("per_partition".into(), "min".into()));
        }
        if let Some(idle) = self.idle_timeout_ms {
            params.push(("idle_timeout".into(), format_interval_ms(idle)));
        }
        ("Watermark", params)
    }

    fn output_schema(&self, input: &SchemaRef) -> SchemaRef {
        input.clone()
    }

    fn build(&self, ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(WatermarkOp(self.generator(ctx.metrics)))))
    }
}

/// Tracks the largest event time seen and yields `max − delay` as the
/// watermark after each batch that advances it.
///
/// Over a partitioned source (Kafka) each partition has its own `max −
/// delay`; the watermark is their minimum, over the partitions the source
/// reads. A partition that has had no row for `idle_timeout` does not count
/// (it would stall event time) until it has rows again; when the whole source
/// has been silent that long, event time continues from the latest event
/// time seen in any partition, with the wall clock
/// ([`WatermarkGenerator::idle_advance`]).
pub(crate) struct WatermarkGenerator {
    column: usize,
    delay_ms: i64,
    current: i64,
    metrics: Arc<QueryMetrics>,
    partitions: Option<PartitionClocks>,
}

/// The largest event time of one batch's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchTimes {
    /// Over all rows (`i64::MIN`: none has one).
    All(i64),
    /// Per (topic, partition) of a partitioned source.
    Each(Vec<(String, i32, i64)>),
}

impl BatchTimes {
    /// The largest event time of a partition's rows (`i64::MIN`: none).
    pub(crate) fn of(&self, topic: &str, partition: i32) -> i64 {
        match self {
            BatchTimes::All(t) => *t,
            BatchTimes::Each(v) => v
                .iter()
                .find(|e| e.0 == topic && e.1 == partition)
                .map_or(i64::MIN, |e| e.2),
        }
    }
}

/// Per-partition event time of a partitioned source.
struct PartitionClocks {
    topic_column: usize,
    partition_column: usize,
    idle: Option<Duration>,
    /// Topics seen; (topic index, partition) → slot.
    topics: Vec<String>,
    slots: HashMap<(usize, i32), usize>,
    /// Largest event time seen per slot.
    max: Vec<i64>,
    /// When each slot last had a row (or when it became known).
    last_row: Vec<Instant>,
}

impl PartitionClocks {
    fn slot(&mut self, topic: &str, partition: i32, now: Instant) -> usize {
        let t = match self.topics.iter().position(|n| n == topic) {
            Some(t) => t,
            None => {
                self.topics.push(topic.to_string());
                self.topics.len() - 1
            }
        };
        if let Some(&s) = self.slots.get(&(t, partition)) {
            return s;
        }
        let s = self.max.len();
        self.slots.insert((t, partition), s);
        self.max.push(i64::MIN);
        self.last_row.push(now);
        s
    }

    /// Folds a batch in; returns the minimum over active partitions.
    fn observe(&mut self, batch: &RecordBatch, ts: &TimestampMillisecondArray) -> Option<i64> {
        let now = Instant::now();
        let topics = batch.column(self.topic_column).as_string_opt::<i32>()?;
        let parts = batch
            .column(self.partition_column)
            .as_primitive_opt::<Int32Type>()?;
        let mut last: Option<(usize, usize)> = None; // (row's topic index, slot)
        for i in 0..batch.num_rows() {
            if ts.is_null(i) {
                continue;
            }
            let (topic, partition) = (topics.value(i), parts.value(i));
            let slot = match last {
                Some((row, s)) if topics.value(row) == topic && parts.value(row) == partition => s,
                _ => self.slot(topic, partition, now),
            };
            last = Some((i, slot));
            self.max[slot] = self.max[slot].max(ts.value(i));
            self.last_row[slot] = now;
        }
        self.minimum(now)
    }

    /// The minimum over partitions not idle; `None` while all are idle.
    fn minimum(&self, now: Instant) -> Option<i64> {
        self.max
            .iter()
            .zip(&self.last_row)
            .filter(|(_, seen)| self.idle.is_none_or(|d| now.duration_since(**seen) < d))
            .map(|(m, _)| *m)
            .min()
    }
}

impl WatermarkGenerator {
    /// Watermarks over `column` (a TIMESTAMP), `delay_ms` behind it.
    pub fn new(column: usize, delay_ms: i64, metrics: Arc<QueryMetrics>) -> Self {
        Self {
            column,
            delay_ms,
            current: i64::MIN,
            metrics,
            partitions: None,
        }
    }

    /// Per-partition watermarks over the `_topic` / `_partition` columns.
    pub fn per_partition(
        mut self,
        topic_column: usize,
        partition_column: usize,
        idle_timeout_ms: Option<i64>,
    ) -> Self {
        self.partitions = Some(PartitionClocks {
            topic_column,
            partition_column,
            idle: idle_timeout_ms.map(|ms| Duration::from_millis(ms.max(1) as u64)),
            topics: Vec::new(),
            slots: HashMap::new(),
            max: Vec::new(),
            last_row: Vec::new(),
        });
        self
    }

    /// The source's partitions (topic, partition), told before the first
    /// batch, so a partition that has not spoken yet holds event time back.
    pub fn set_partitions(&mut self, partitions: &[(String, i32)]) {
        if let Some(p) = &mut self.partitions {
            let now = Instant::now();
            for (t, n) in partitions {
                p.slot(t, *n, now);
            }
        }
    }

    /// The clock as a checkpoint records it: the watermark and each
    /// partition's largest event time.
    pub fn state(&self) -> serde_json::Value {
        let partitions: Vec<serde_json::Value> =
            self.partitions.as_ref().map_or_else(Vec::new, |p| {
                let mut slots: Vec<(&(usize, i32), &usize)> = p.slots.iter().collect();
                slots.sort_unstable();
                slots
                    .into_iter()
                    .filter(|(_, s)| p.max[**s] != i64::MIN)
                    .map(|((t, n), s)| serde_json::json!([p.topics[*t], n, p.max[*s]]))
                    .collect()
            });
        let current = (self.current != i64::MIN).then_some(self.current);
        serde_json::json!({ "watermark": current, "partitions": partitions })
    }

    /// Goes back to a [`WatermarkGenerator::state`], before the first batch.
    ///
    /// # Errors
    /// A state this generator did not write.
    pub fn restore_state(&mut self, state: &serde_json::Value) -> ExecResult<()> {
        let bad = || ExecError::Internal(format!("not a watermark state: {state}"));
        match state.get("watermark") {
            Some(serde_json::Value::Null) | None => {}
            Some(w) => {
                self.current = w.as_i64().ok_or_else(bad)?;
                self.metrics
                    .watermark
                    .store(self.current, Ordering::Relaxed);
            }
        }
        let listed = state.get("partitions").and_then(|p| p.as_array());
        if let (Some(p), Some(list)) = (&mut self.partitions, listed) {
            let now = Instant::now();
            for e in list {
                let (Some(topic), Some(n), Some(max)) = (
                    e.get(0).and_then(|v| v.as_str()),
                    e.get(1).and_then(|v| v.as_i64()),
                    e.get(2).and_then(|v| v.as_i64()),
                ) else {
                    return Err(bad());
                };
                let slot = p.slot(topic, n as i32, now);
                p.max[slot] = max;
            }
        }
        Ok(())
    }

    /// Folds a batch in; the new watermark if it advanced.
    ///
    /// # Errors
    /// The event-time column is not a TIMESTAMP (a planner bug).
    pub fn observe(&mut self, batch: &RecordBatch) -> ExecResult<Option<i64>> {
        let ts = self.times(batch)?;
        if batch.num_rows() > 0 {
            self.metrics.source_idle.store(false, Ordering::Relaxed);
        }
        let max = match &mut self.partitions {
            Some(p) => {
                let min = p.observe(batch, ts);
                if let Some(&latest) = p.max.iter().max() {
                    self.metrics
                        .event_time_max
                        .fetch_max(latest, Ordering::Relaxed);
                }
                min
            }
            None => {
                let max = arrow::compute::max(ts);
                if let Some(m) = max {
                    self.metrics.event_time_max.fetch_max(m, Ordering::Relaxed);
                }
                max
            }
        };
        Ok(max.and_then(|max| self.advance(max)))
    }

    /// The largest event time of a batch's rows, per source partition when
    /// the source is partitioned.
    ///
    /// # Errors
    /// A time column that is not a TIMESTAMP (a planner bug).
    pub fn max_event_times(&self, batch: &RecordBatch) -> ExecResult<BatchTimes> {
        let ts = self.times(batch)?;
        let Some(p) = &self.partitions else {
            return Ok(BatchTimes::All(arrow::compute::max(ts).unwrap_or(i64::MIN)));
        };
        let (Some(topics), Some(parts)) = (
            batch.column(p.topic_column).as_string_opt::<i32>(),
            batch
                .column(p.partition_column)
                .as_primitive_opt::<Int32Type>(),
        ) else {
            return Ok(BatchTimes::All(arrow::compute::max(ts).unwrap_or(i64::MIN)));
        };
        let mut out: Vec<(String, i32, i64)> = Vec::new();
        let mut last = usize::MAX;
        for i in 0..batch.num_rows() {
            if ts.is_null(i) {
                continue;
            }
            let (topic, partition) = (topics.value(i), parts.value(i));
            if last >= out.len() || out[last].0 != topic || out[last].1 != partition {
                last = match out.iter().position(|e| e.0 == topic && e.1 == partition) {
                    Some(at) => at,
                    None => {
                        out.push((topic.to_string(), partition, i64::MIN));
                        out.len() - 1
                    }
                };
            }
            out[last].2 = out[last].2.max(ts.value(i));
        }
        Ok(BatchTimes::Each(out))
    }

    fn times<'a>(&self, batch: &'a RecordBatch) -> ExecResult<&'a TimestampMillisecondArray> {
        batch
            .column(self.column)
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| ExecError::Internal("watermark column is not a TIMESTAMP".into()))
    }

    /// The whole source has been silent past its idle timeout and the wall
    /// clock moved `ms` on: event time continues from the latest event time
    /// seen in any partition, by `ms`. The new watermark, if any (none
    /// before any event time was seen).
    pub fn idle_advance(&mut self, ms: i64) -> Option<i64> {
        if let Some(latest) = self
            .partitions
            .as_ref()
            .and_then(|p| p.max.iter().copied().max())
        {
            self.advance(latest);
        }
        if self.current == i64::MIN {
            return None;
        }
        // a repartition topic tells stage 2 (docs/scale-out.md)
        self.metrics.source_idle.store(true, Ordering::Relaxed);
        self.current = self.current.saturating_add(ms);
        self.metrics
            .watermark
            .store(self.current, Ordering::Relaxed);
        Some(self.current)
    }

    fn advance(&mut self, max: i64) -> Option<i64> {
        if max == i64::MIN {
            return None;
        }
        let wm = max.saturating_sub(self.delay_ms);
        (wm > self.current).then(|| {
            self.current = wm;
            self.metrics.watermark.store(wm, Ordering::Relaxed);
            wm
        })
    }
}

/// A [`WatermarkGenerator`] as the first operator of a single-thread
/// pipeline: each batch passes, followed by the watermark it advanced.
pub(crate) struct WatermarkOp(pub WatermarkGenerator);

impl Operator for WatermarkOp {
    fn name(&self) -> &'static str {
        "watermark"
    }

    /// Part `clock`: the watermark last emitted (per-partition event times
    /// are the source's to record).
    fn snapshot(&mut self) -> ExecResult<OperatorState> {
        let mut out = OperatorState::default();
        let current = Arc::new(arrow::array::Int64Array::from(vec![self.0.current]));
        out.push(
            "clock",
            crate::exec::grouped_state::state_batch(vec![("watermark".into(), current)], 1)?,
        );
        Ok(out)
    }

    fn restore(&mut self, state: OperatorState) -> ExecResult<()> {
        let w = crate::exec::grouped_state::state_value(state.part("clock")?, "watermark")?;
        self.0.current = w;
        Ok(())
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        let advanced = self.0.observe(&batch)?;
        out.push(Message::Batch(batch));
        if let Some(w) = advanced {
            out.push(Message::Watermark(w));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn batch(rows: &[(i32, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("_topic", DataType::Utf8, true),
            Field::new("_partition", DataType::Int32, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampMillisecondArray::from_iter_values(
                    rows.iter().map(|r| r.1),
                )),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "t"))),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
            ],
        )
        .unwrap()
    }

    fn marks(g: &mut WatermarkGenerator, rows: &[(i32, i64)]) -> Vec<i64> {
        g.observe(&batch(rows)).unwrap().into_iter().collect()
    }

    #[test]
    fn per_partition_watermark_is_the_minimum_and_waits_for_every_partition() {
        let metrics = Arc::new(QueryMetrics::with_partitions(1));
        let mut g = WatermarkGenerator::new(0, 100, metrics).per_partition(1, 2, None);
        g.set_partitions(&[("t".into(), 0), ("t".into(), 1)]);
        // partition 1 has said nothing yet: no watermark
        assert!(marks(&mut g, &[(0, 5_000), (0, 6_000)]).is_empty());
        assert_eq!(marks(&mut g, &[(1, 2_000)]), [1_900]);
        // the slow partition holds it back
        assert!(marks(&mut g, &[(0, 9_000)]).is_empty());
        assert_eq!(marks(&mut g, &[(1, 7_000), (0, 9_500)]), [6_900]);
    }

    #[test]
    fn an_idle_partition_stops_holding_the_watermark_back() {
        let metrics = Arc::new(QueryMetrics::with_partitions(1));
        let mut g = WatermarkGenerator::new(0, 0, metrics).per_partition(1, 2, Some(30));
        g.set_partitions(&[("t".into(), 0), ("t".into(), 1)]);
        assert!(marks(&mut g, &[(0, 5_000)]).is_empty());
        std::thread::sleep(Duration::from_millis(60));
        // partition 1 has been silent past the idle timeout
        assert_eq!(marks(&mut g, &[(0, 6_000)]), [6_000]);
        // back with old rows: the watermark does not go back
        assert!(marks(&mut g, &[(1, 1_000)]).is_empty());
    }

    #[test]
    fn a_silent_source_advances_from_the_latest_partition_with_the_clock() {
        let metrics = Arc::new(QueryMetrics::with_partitions(1));
        let mut g = WatermarkGenerator::new(0, 0, metrics).per_partition(1, 2, Some(30));
        assert_eq!(g.idle_advance(10), None, "no event time seen yet");
        g.set_partitions(&[("t".into(), 0), ("t".into(), 1)]);
        assert!(marks(&mut g, &[(0, 5_000)]).is_empty());
        // every partition idle: from partition 0's 5000, then by the clock
        assert_eq!(g.idle_advance(10), Some(5_010));
        assert_eq!(g.idle_advance(5), Some(5_015));
    }
}
