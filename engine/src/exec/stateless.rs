//! Stateless operators: watermark generation, filter, projection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::AsArray;
use arrow::compute::filter_record_batch;
use arrow::datatypes::{SchemaRef, TimestampMillisecondType};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::{ExecError, ExecResult};
use crate::exec::expr::CompiledExpr;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Message, Operator};

/// Tracks the largest event time seen and emits `max − delay` as the
/// watermark after each batch that advances it.
pub(crate) struct WatermarkOp {
    column: usize,
    delay_ms: i64,
    current: i64,
    metrics: Arc<QueryMetrics>,
}

impl WatermarkOp {
    pub fn new(column: usize, delay_ms: i64, metrics: Arc<QueryMetrics>) -> Self {
        Self {
            column,
            delay_ms,
            current: i64::MIN,
            metrics,
        }
    }
}

impl Operator for WatermarkOp {
    fn name(&self) -> &'static str {
        "watermark"
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Message>) -> ExecResult<()> {
        let ts = batch
            .column(self.column)
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| ExecError::Internal("watermark column is not a TIMESTAMP".into()))?;
        let max = arrow::compute::max(ts);
        out.push(Message::Batch(batch));
        if let Some(max) = max {
            let wm = max.saturating_sub(self.delay_ms);
            if wm > self.current {
                self.current = wm;
                self.metrics.watermark.store(wm, Ordering::Relaxed);
                out.push(Message::Watermark(wm));
            }
        }
        Ok(())
    }

    fn handle_idle_advance(&mut self, ms: i64, out: &mut Vec<Message>) -> ExecResult<()> {
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
