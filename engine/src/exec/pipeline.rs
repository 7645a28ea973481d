//! Builds the operator chain of a physical plan and pushes messages through it.

use std::sync::Arc;

use crate::error::ExecResult;
use crate::exec::aggregate::{AggregateSpec, GroupAggregateOp};
use crate::exec::expr::compile;
use crate::exec::hopping_aggregate::HoppingAggregateOp;
use crate::exec::metrics::{OperatorCounters, QueryMetrics};
use crate::exec::operator::{Collector, Message, Operator, OperatorState};
use crate::exec::row_window::RowWindowOp;
use crate::exec::session_aggregate::SessionAggregateOp;
use crate::exec::stateless::{FilterOp, ProjectOp};
use crate::exec::top_n::TopNOp;
use crate::exec::tumbling_aggregate::{Aligned, TumblingAggregateOp};
use crate::exec::watermark::{WatermarkGenerator, WatermarkOp};
use crate::plan::logical::{AggregateCall, EmitMode, OP_COLUMN, schema_of};
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
    emit: EmitMode,
) -> arrow::datatypes::SchemaRef {
    let mut cols: Vec<(&str, SqlType)> = Vec::new();
    if windowed {
        cols.push(("window_start", SqlType::Timestamp));
        cols.push(("window_end", SqlType::Timestamp));
    }
    cols.extend(keys.iter().map(|(e, n)| (n.as_str(), e.sql_type())));
    cols.extend(aggs.iter().map(|a| (a.display.as_str(), a.ret)));
    if emit == EmitMode::Changes {
        cols.push((OP_COLUMN, SqlType::Varchar));
    }
    schema_of(cols.into_iter())
}

impl Pipeline {
    /// Builds the operators of `plan`.
    ///
    /// # Errors
    /// An expression or aggregate that cannot be compiled.
    pub fn build(plan: &PhysicalPlan, metrics: &Arc<QueryMetrics>) -> ExecResult<Self> {
        Self::build_nodes(&plan.nodes, 0, metrics, None)
    }

    /// Builds the operators of `nodes` (the plan's nodes from position
    /// `first` on), for partition worker `partition` (with its own gauges)
    /// or, with `None`, for the query as a whole; an exchange is skipped (the
    /// runtime routes rows). Operators at the same plan position share row
    /// counters across partitions.
    ///
    /// # Errors
    /// An expression or aggregate that cannot be compiled.
    pub fn build_nodes(
        nodes: &[PhysicalNode],
        first: usize,
        query_metrics: &Arc<QueryMetrics>,
        partition: Option<usize>,
    ) -> ExecResult<Self> {
        let metrics = &match partition {
            Some(p) => QueryMetrics::partition(query_metrics, p),
            None => query_metrics.clone(),
        };
        let mut ops: Vec<Box<dyn Operator>> = Vec::new();
        for node in nodes {
            ops.push(match node {
                PhysicalNode::Exchange { .. } | PhysicalNode::Gather => continue,
                PhysicalNode::RowWindow {
                    output_schema,
                    partition,
                    time_column,
                    frame,
                    calls,
                    lateness,
                    ..
                } => Box::new(RowWindowOp::new(
                    partition,
                    calls,
                    *time_column,
                    *frame,
                    output_schema.clone(),
                    *lateness,
                    metrics.clone(),
                )?),
                PhysicalNode::TopN {
                    input_schema,
                    output_schema,
                    window_end,
                    partition,
                    order,
                    limit,
                    kind,
                    lateness,
                } => Box::new(TopNOp::new(
                    input_schema,
                    *window_end,
                    partition.iter().map(|(c, _)| *c).collect(),
                    order.iter().map(|(k, _)| *k).collect(),
                    *limit,
                    *kind,
                    output_schema.clone(),
                    *lateness,
                    metrics.clone(),
                )?),
                PhysicalNode::Watermark { .. } => match watermark_generator(node, metrics) {
                    Some(g) => Box::new(WatermarkOp(g)),
                    None => continue,
                },
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
                    emit,
                    lateness,
                    ..
                } => {
                    let spec = AggregateSpec::new(keys, aggs, agg_schema(true, keys, aggs, *emit))?;
                    let geometry = Aligned {
                        size_ms: *size_ms,
                        slide_ms: *size_ms,
                    };
                    Box::new(TumblingAggregateOp::new(
                        spec,
                        *time_column,
                        geometry,
                        *emit,
                        *lateness,
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
                    emit,
                    lateness,
                    ..
                } => {
                    let spec = AggregateSpec::new(keys, aggs, agg_schema(true, keys, aggs, *emit))?;
                    match emit {
                        EmitMode::Final => Box::new(HoppingAggregateOp::new(
                            spec,
                            *time_column,
                            *size_ms,
                            *slide_ms,
                            *pane_ms,
                            *lateness,
                            metrics.clone(),
                        )),
                        EmitMode::Changes => Box::new(TumblingAggregateOp::new(
                            spec,
                            *time_column,
                            Aligned {
                                size_ms: *size_ms,
                                slide_ms: *slide_ms,
                            },
                            *emit,
                            *lateness,
                            metrics.clone(),
                        )),
                    }
                }
                PhysicalNode::SessionAggregate {
                    time_column,
                    gap_ms,
                    keys,
                    aggs,
                    emit,
                    lateness,
                    ..
                } => {
                    let spec = AggregateSpec::new(keys, aggs, agg_schema(true, keys, aggs, *emit))?;
                    Box::new(SessionAggregateOp::new(
                        spec,
                        *time_column,
                        *gap_ms,
                        *emit,
                        *lateness,
                        metrics.clone(),
                    )?)
                }
                PhysicalNode::GlobalAggregate { keys, aggs, emit } => {
                    let spec =
                        AggregateSpec::new(keys, aggs, agg_schema(false, keys, aggs, *emit))?;
                    Box::new(GroupAggregateOp::new(spec, *emit)?)
                }
            });
        }
        let mut counters = Vec::with_capacity(ops.len());
        if let Ok(mut registered) = query_metrics.operators.lock() {
            let positions = nodes.iter().enumerate().filter(|(_, n)| {
                !matches!(n, PhysicalNode::Exchange { .. } | PhysicalNode::Gather)
            });
            debug_assert_eq!(positions.clone().count(), ops.len());
            for ((i, _), op) in positions.zip(&ops) {
                let label = format!("{}_{}", first + i + 1, op.name());
                let shared = registered.iter().find(|c| c.label == label).cloned();
                counters.push(shared.unwrap_or_else(|| {
                    let c = Arc::new(OperatorCounters {
                        label,
                        ..Default::default()
                    });
                    registered.push(c.clone());
                    c
                }));
            }
        }
        if counters.len() != ops.len() {
            return Err(crate::error::ExecError::Internal(
                "operator counters could not be registered".into(),
            ));
        }
        Ok(Self { ops, counters })
    }

    /// Pushes one message through every operator; returns the messages that
    /// come out of the last one (non-empty batches, watermarks, barriers,
    /// dead letters and, after [`Message::End`], `End` itself).
    ///
    /// # Errors
    /// The first operator failure.
    pub fn push(&mut self, message: Message) -> ExecResult<Vec<Message>> {
        self.run_from(0, vec![message])
    }

    /// The input ended: closes operators in order, each one's final output
    /// flowing through the rest. Returns the messages that come out
    /// (without the `End` marker).
    ///
    /// # Errors
    /// The first operator failure.
    pub fn close(&mut self) -> ExecResult<Vec<Message>> {
        let mut out = self.push(Message::End)?;
        out.retain(|m| !matches!(m, Message::End));
        Ok(out)
    }

    /// Every operator's state (see [`Operator::snapshot`]), in order; taken
    /// after a checkpoint barrier has passed the whole pipeline.
    ///
    /// # Errors
    /// The first operator that cannot read its state.
    pub fn snapshot(&mut self) -> ExecResult<Vec<OperatorState>> {
        self.ops.iter_mut().map(|op| op.snapshot()).collect()
    }

    /// Loads a [`Pipeline::snapshot`] into this fresh pipeline, built from
    /// the same plan.
    ///
    /// # Errors
    /// A snapshot of another plan, or an operator that cannot load its part.
    pub fn restore(&mut self, states: Vec<OperatorState>) -> ExecResult<()> {
        if states.len() != self.ops.len() {
            return Err(crate::error::ExecError::Internal(format!(
                "a snapshot of {} operators cannot restore a pipeline of {}",
                states.len(),
                self.ops.len()
            )));
        }
        for (op, state) in self.ops.iter_mut().zip(states) {
            op.restore(state)?;
        }
        Ok(())
    }

    /// The earliest event time any operator still holds back (see
    /// [`Operator::retained_event_time`]).
    pub fn retained_event_time(&self) -> Option<i64> {
        self.ops
            .iter()
            .filter_map(|op| op.retained_event_time())
            .min()
    }

    fn run_from(&mut self, first: usize, mut messages: Vec<Message>) -> ExecResult<Vec<Message>> {
        for (op, counters) in self.ops[first..].iter_mut().zip(&self.counters[first..]) {
            let mut next = Collector::default();
            for m in messages {
                match m {
                    Message::Batch(b) => {
                        QueryMetrics::add(&counters.rows_in, b.num_rows() as u64);
                        op.process_batch(b, &mut next)?
                    }
                    Message::Watermark(w) => op.handle_watermark(w, &mut next)?,
                    Message::Barrier(c) => op.handle_checkpoint(c, &mut next)?,
                    Message::End => {
                        op.on_close(&mut next)?;
                        next.push(Message::End);
                    }
                    m @ (Message::DeadLetter(_) | Message::Malformed(_)) => next.push(m),
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
            messages = next.take();
        }
        messages.retain(|m| !matches!(m, Message::Batch(b) if b.num_rows() == 0));
        Ok(messages)
    }
}

/// The watermark generator a `Watermark` node describes (`None` for any
/// other node).
pub(crate) fn watermark_generator(
    node: &PhysicalNode,
    metrics: &Arc<QueryMetrics>,
) -> Option<WatermarkGenerator> {
    let PhysicalNode::Watermark {
        column,
        delay_ms,
        idle_timeout_ms,
        per_partition,
        ..
    } = node
    else {
        return None;
    };
    let g = WatermarkGenerator::new(*column, *delay_ms, metrics.clone());
    Some(match per_partition {
        Some((topic, partition)) => g.per_partition(*topic, *partition, *idle_timeout_ms),
        None => g,
    })
}
