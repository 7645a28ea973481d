//! Stateless operators: filter and projection.

use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::{ExecError, ExecResult};
use crate::exec::expr::CompiledExpr;
use crate::exec::operator::{Collector, Message, Operator};

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

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
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

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
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
