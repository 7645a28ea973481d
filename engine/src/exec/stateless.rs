//! Stateless operators: watermark generation, filter, projection.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::array::{Array, TimestampMillisecondArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int32Type, SchemaRef, TimestampMillisecondType};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::{ExecError, ExecResult};
use crate::exec::expr::CompiledExpr;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Message, Operator};

/// Tracks the largest event time seen and emits `max − delay` as the
/// watermark after each batch that advances it.
///
/// Over a partitioned source (Kafka) each partition has its own `max −
/// delay`; the watermark is their minimum, over the partitions the source
/// reads. A partition that has had no row for `idle_timeout` does not count
/// (it would stall event time) until it has rows again; when the whole source
/// has been silent that long, event time continues from the latest event
/// time seen in any partition, with the wall clock.
pub(crate) struct WatermarkOp {
    column: usize,
    delay_ms: i64,
    current: i64,
    metrics: Arc<QueryMetrics>,
    partitions: Option<PartitionClocks>,
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

impl WatermarkOp {
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

    fn advance(&mut self, max: i64, out: &mut Vec<Message>) {
        if max == i64::MIN {
            return;
        }
        let wm = max.saturating_sub(self.delay_ms);
        if wm > self.current {
            self.current = wm;
            self.metrics.watermark.store(wm, Ordering::Relaxed);
            out.push(Message::Watermark(wm));
        }
    }
}

impl Operator for WatermarkOp {
    fn name(&self) -> &'static str {
        "watermark"
    }

    fn set_source_partitions(&mut self, partitions: &[(String, i32)]) {
        if let Some(p) = &mut self.partitions {
            let now = Instant::now();
            for (t, n) in partitions {
                p.slot(t, *n, now);
            }
        }
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Message>) -> ExecResult<()> {
        let ts = batch
            .column(self.column)
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| ExecError::Internal("watermark column is not a TIMESTAMP".into()))?;
        let max = match &mut self.partitions {
            Some(p) => p.observe(&batch, ts),
            None => arrow::compute::max(ts),
        };
        out.push(Message::Batch(batch));
        if let Some(max) = max {
            self.advance(max, out);
        }
        Ok(())
    }

    fn handle_idle_advance(&mut self, ms: i64, out: &mut Vec<Message>) -> ExecResult<()> {
        // the whole source is silent: every partition is idle, so event time
        // continues from the latest event time seen in any of them
        if let Some(latest) = self
            .partitions
            .as_ref()
            .and_then(|p| p.max.iter().copied().max())
        {
            self.advance(latest, out);
        }
        // nothing seen yet: no event time to advance from
        if self.current != i64::MIN {
            self.current = self.current.saturating_add(ms);
            self.metrics
                .watermark
                .store(self.current, Ordering::Relaxed);
            out.push(Message::Watermark(self.current));
        }
        Ok(())
    }
}

/// Keeps rows whose predicate is TRUE.
pub(crate) struct FilterOp {
    predicate: CompiledExpr,
}

impl FilterOp {
    pub fn new(predicate: CompiledExpr) -> Self {
        Self { predicate }
    }
}

impl Operator for FilterOp {
    fn name(&self) -> &'static str {
        "filter"
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Message>) -> ExecResult<()> {
        let mask = self.predicate.evaluate_predicate(&batch)?;
        let kept = mask.true_count();
        if kept == batch.num_rows() {
            out.push(Message::Batch(batch));
        } else if kept > 0 {
            let b =
                filter_record_batch(&batch, &mask).map_err(|e| ExecError::arrow("filter", e))?;
            out.push(Message::Batch(b));
        }
        Ok(())
    }
}

/// Computes the output columns.
pub(crate) struct ProjectOp {
    exprs: Vec<CompiledExpr>,
    schema: SchemaRef,
}

impl ProjectOp {
    pub fn new(exprs: Vec<CompiledExpr>, schema: SchemaRef) -> Self {
        Self { exprs, schema }
    }
}

impl Operator for ProjectOp {
    fn name(&self) -> &'static str {
        "project"
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Message>) -> ExecResult<()> {
        let columns = self
            .exprs
            .iter()
            .map(|e| e.evaluate(&batch))
            .collect::<ExecResult<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let b = RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map_err(|e| ExecError::arrow("project", e))?;
        out.push(Message::Batch(b));
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

    fn marks(op: &mut WatermarkOp, rows: &[(i32, i64)]) -> Vec<i64> {
        let mut out = Vec::new();
        op.process_batch(batch(rows), &mut out).unwrap();
        out.into_iter()
            .filter_map(|m| match m {
                Message::Watermark(w) => Some(w),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn per_partition_watermark_is_the_minimum_and_waits_for_every_partition() {
        let metrics = Arc::new(QueryMetrics::with_partitions(1));
        let mut op = WatermarkOp::new(0, 100, metrics).per_partition(1, 2, None);
        op.set_source_partitions(&[("t".into(), 0), ("t".into(), 1)]);
        // partition 1 has said nothing yet: no watermark
        assert!(marks(&mut op, &[(0, 5_000), (0, 6_000)]).is_empty());
        assert_eq!(marks(&mut op, &[(1, 2_000)]), [1_900]);
        // the slow partition holds it back
        assert!(marks(&mut op, &[(0, 9_000)]).is_empty());
        assert_eq!(marks(&mut op, &[(1, 7_000), (0, 9_500)]), [6_900]);
    }

    #[test]
    fn an_idle_partition_stops_holding_the_watermark_back() {
        let metrics = Arc::new(QueryMetrics::with_partitions(1));
        let mut op = WatermarkOp::new(0, 0, metrics).per_partition(1, 2, Some(30));
        op.set_source_partitions(&[("t".into(), 0), ("t".into(), 1)]);
        assert!(marks(&mut op, &[(0, 5_000)]).is_empty());
        std::thread::sleep(Duration::from_millis(60));
        // partition 1 has been silent past the idle timeout
        assert_eq!(marks(&mut op, &[(0, 6_000)]), [6_000]);
        // back with old rows: the watermark does not go back
        assert!(marks(&mut op, &[(1, 1_000)]).is_empty());
    }
}
