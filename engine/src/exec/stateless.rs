//! Stateless operators: filter and projection.

use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::{ExecError, ExecResult};
use crate::exec::expr::{CompiledExpr, compile};
use crate::exec::operator::{Collector, Message, Operator};
use crate::plan::explain::{Params, named};
use crate::plan::expr::Expr;
use crate::plan::logical::schema_of;
use crate::plan::physical::{BuildContext, NodeKind};

/// Keeps rows where the predicate is TRUE.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FilterNode {
    /// The predicate.
    pub predicate: Expr,
}

impl NodeKind for FilterNode {
    fn explain(&self) -> (&'static str, Params) {
        (
            "Filter",
            vec![("predicate".into(), self.predicate.to_string())],
        )
    }

    fn output_schema(&self, input: &SchemaRef) -> SchemaRef {
        input.clone()
    }

    fn build(&self, _ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(FilterOp::new(compile(&self.predicate)?))))
    }
}

/// Computes the output columns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProjectNode {
    /// (expression, output name).
    pub exprs: Vec<(Expr, String)>,
}

impl NodeKind for ProjectNode {
    fn explain(&self) -> (&'static str, Params) {
        ("Project", vec![("exprs".into(), named(&self.exprs))])
    }

    fn output_schema(&self, _input: &SchemaRef) -> SchemaRef {
        schema_of(self.exprs.iter().map(|(e, n)| (n.as_str(), e.sql_type())))
    }

    fn build(&self, ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        let compiled = self
            .exprs
            .iter()
            .map(|(e, _)| compile(e))
            .collect::<ExecResult<_>>()?;
        let schema = self.output_schema(ctx.input);
        Ok(Some(Box::new(ProjectOp::new(compiled, schema))))
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
            .zip(self.schema.fields())
            .map(|(e, field)| {
                let column = e.evaluate(&batch)?;
                // an untyped NULL (`SELECT NULL AS n`) takes its column's type
                Ok(
                    if column.data_type() == &DataType::Null && field.data_type() != &DataType::Null
                    {
                        arrow::array::new_null_array(field.data_type(), column.len())
                    } else {
                        column
                    },
                )
            })
            .collect::<ExecResult<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let b = RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map_err(|e| ExecError::arrow("project", e))?;
        out.push(Message::Batch(b));
        Ok(())
    }
}
