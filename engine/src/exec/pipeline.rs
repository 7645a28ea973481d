//! Builds the operator chain of a physical plan and pushes messages through it.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::error::ExecResult;
use crate::exec::aggregate::{AggregateSpec, GroupAggregateOp};
use crate::exec::expr::compile;
use crate::exec::hopping_aggregate::HoppingAggregateOp;
use crate::exec::metrics::{OperatorCounters, QueryMetrics};
use crate::exec::operator::{Message, Operator};
use crate::exec::session_aggregate::SessionAggregateOp;
use crate::exec::stateless::{FilterOp, ProjectOp, WatermarkOp};
use crate::exec::tumbling_aggregate::TumblingAggregateOp;
use crate::plan::logical::{AggregateCall, schema_of};
use crate::plan::physical::{PhysicalNode, PhysicalPlan};
use crate::types::SqlType;

/// A chain of operators; messages enter at the first and batches leave the last.
pub struct Pipeline {
    ops: Vec<Box<dyn Operator>>,
    counters: Vec<Arc<OperatorCounters>>,
}

fn agg_schema(
    windowed: bool,
    keys: &[(crate::plan::expr::Expr, String)],
    aggs: &[AggregateCall],
) -> arrow::datatypes::SchemaRef {
    let mut cols: Vec<(&str, SqlType)> = Vec::new();
    if windowed {
        cols.push(("window_start", SqlType::Timestamp));
        cols.push(("window_end", SqlType::Timestamp));
    }
    cols.extend(keys.iter().map(|(e, n)| (n.as_str(), e.sql_type())));
    cols.extend(aggs.iter().map(|a| (a.display.as_str(), a.ret)));
    schema_of(cols.into_iter())
}

impl Pipeline {
    /// Builds the operators of `plan`.
    ///
    /// # Errors
    /// An expression or aggregate that cannot be compiled.
    pub fn build(plan: &PhysicalPlan, metrics: &Arc<QueryMetrics>) -> ExecResult<Self> {
        let mut ops: Vec<Box<dyn Operator>> = Vec::new();
        for node in &plan.nodes {
            ops.push(match node {
                PhysicalNode::Watermark {
                    column, delay_ms, ..
                } => Box::new(WatermarkOp::new(*column, *delay_ms, metrics.clone())),
                PhysicalNode::Filter { predicate } => Box::new(FilterOp::new(compile(predicate)?)),
                PhysicalNode::Project { exprs } => {
                    let schema = schema_of(exprs.iter().map(|(e, n)| (n.as_str(), e.sql_type())));
                    let compiled = exprs
                        .iter()
                        .map(|(e, _)| compile(e))
                        .collect::<ExecResult<_>>()?;
                    Box::new(ProjectOp::new(compiled, schema))
                }
                PhysicalNode::TumblingAggregate {
                    time_column,
                    size_ms,
                    keys,
                    aggs,
                    ..
                } => {
                    let spec = AggregateSpec::new(keys, aggs, agg_schema(true, keys, aggs))?;
                    Box::new(TumblingAggregateOp::new(
                        spec,
                        *time_column,
                        *size_ms,
                        metrics.clone(),
                    ))
                }
                PhysicalNode::HoppingAggregate {
                    time_column,
                    size_ms,
                    slide_ms,
                    pane_ms,
                    keys,
                    aggs,
                    ..
                } => {
                    let spec = AggregateSpec::new(keys, aggs, agg_schema(true, keys, aggs))?;
                    Box::new(HoppingAggregateOp::new(
                        spec,
                        *time_column,
                        *size_ms,
                        *slide_ms,
                        *pane_ms,
                        metrics.clone(),
                    ))
                }
                PhysicalNode::SessionAggregate {
                    time_column,
                    gap_ms,
                    keys,
                    aggs,
                    ..
                } => {
                    let spec = AggregateSpec::new(keys, aggs, agg_schema(true, keys, aggs))?;
                    Box::new(SessionAggregateOp::new(
                        spec,
                        *time_column,
                        *gap_ms,
                        metrics.clone(),
                    )?)
                }
                PhysicalNode::GlobalAggregate { keys, aggs } => {
                    let spec = AggregateSpec::new(keys, aggs, agg_schema(false, keys, aggs))?;
                    Box::new(GroupAggregateOp::new(spec)?)
                }
            });
        }
        let counters: Vec<Arc<OperatorCounters>> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                Arc::new(OperatorCounters {
                    label: format!("{}_{}", i + 1, op.name()),
                    ..Default::default()
                })
            })
            .collect();
        if let Ok(mut registered) = metrics.operators.lock() {
            *registered = counters.clone();
        }
        Ok(Self { ops, counters })
    }

    /// Pushes one message through every operator; returns the batches that
    /// come out of the last one.
    ///
    /// # Errors
    /// The first operator failure.
    pub fn push(&mut self, message: Message) -> ExecResult<Vec<RecordBatch>> {
        self.run_from(0, vec![message])
    }

    /// The input ended: closes operators in order, each one's final output
    /// flowing through the rest. Returns the batches that come out.
    ///
    /// # Errors
    /// The first operator failure.
    pub fn close(&mut self) -> ExecResult<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        for i in 0..self.ops.len() {
            let mut out = Vec::new();
            self.ops[i].on_close(&mut out)?;
            batches.extend(self.run_from(i + 1, out)?);
        }
        Ok(batches)
    }

    fn run_from(
        &mut self,
        first: usize,
        mut messages: Vec<Message>,
    ) -> ExecResult<Vec<RecordBatch>> {
        for (op, counters) in self.ops[first..].iter_mut().zip(&self.counters[first..]) {
            let mut next = Vec::with_capacity(messages.len());
            for m in messages {
                match m {
                    Message::Batch(b) => {
                        QueryMetrics::add(&counters.rows_in, b.num_rows() as u64);
                        op.process_batch(b, &mut next)?
                    }
                    Message::Watermark(w) => op.handle_watermark(w, &mut next)?,
                    Message::Checkpoint(c) => op.handle_checkpoint(c, &mut next)?,
                }
            }
            let out: usize = next
                .iter()
                .map(|m| {
                    if let Message::Batch(b) = m {
                        b.num_rows()
                    } else {
                        0
                    }
                })
                .sum();
            QueryMetrics::add(&counters.rows_out, out as u64);
            messages = next;
        }
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                Message::Batch(b) if b.num_rows() > 0 => Some(b),
                _ => None,
            })
            .collect())
    }
}
