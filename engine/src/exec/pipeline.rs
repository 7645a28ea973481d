//! Builds the operator chain of a physical plan and pushes messages through it.

use std::sync::Arc;

use crate::error::ExecResult;
use crate::exec::metrics::{OperatorCounters, QueryMetrics};
use crate::exec::operator::{Collector, Message, Operator, OperatorState};
use crate::plan::physical::{BuildContext, PhysicalNode, PhysicalPlan};

/// A chain of operators; messages enter at the first and batches leave the last.
pub struct Pipeline {
    ops: Vec<Box<dyn Operator>>,
    counters: Vec<Arc<OperatorCounters>>,
}

impl Pipeline {
    /// Builds the operators of `plan`.
    ///
    /// # Errors
    /// An expression or aggregate that cannot be compiled.
    pub fn build(plan: &PhysicalPlan, metrics: &Arc<QueryMetrics>) -> ExecResult<Self> {
        Self::build_nodes(&plan.source.schema, &plan.nodes, 0, metrics, None, None)
    }

    /// Builds the operators of `nodes` (the plan's nodes from position
    /// `first` on, reading rows of `input`), for partition worker `partition` (with its own gauges)
    /// or, with `None`, for the query as a whole; an exchange is skipped (the
    /// runtime routes rows). Operators at the same plan position share row
    /// counters across partitions. A stateful operator may hold at most
    /// `state_limit` bytes.
    ///
    /// # Errors
    /// An expression or aggregate that cannot be compiled.
    pub fn build_nodes(
        input: &arrow::datatypes::SchemaRef,
        nodes: &[PhysicalNode],
        first: usize,
        query_metrics: &Arc<QueryMetrics>,
        partition: Option<usize>,
        state_limit: Option<u64>,
    ) -> ExecResult<Self> {
        let metrics = &match partition {
            Some(p) => QueryMetrics::partition(query_metrics, p),
            None => query_metrics.clone(),
        };
        let mut ops: Vec<Box<dyn Operator>> = Vec::new();
        // plan positions of the nodes with an operator
        let mut positions = Vec::new();
        let mut schema = input.clone();
        for (i, node) in nodes.iter().enumerate() {
            let kind = node.kind();
            let ctx = BuildContext {
                metrics,
                input: &schema,
                state_limit,
            };
            if let Some(op) = kind.build(&ctx)? {
                ops.push(op);
                positions.push(i);
            }
            schema = kind.output_schema(&schema);
        }
        let mut counters = Vec::with_capacity(ops.len());
        if let Ok(mut registered) = query_metrics.operators.lock() {
            for (i, op) in positions.iter().zip(&ops) {
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

    /// Pushes one message that came in on input `port` of the first
    /// operator (one with several inputs: a join, UNION ALL).
    ///
    /// # Errors
    /// The first operator failure.
    pub fn push_from(&mut self, port: usize, message: Message) -> ExecResult<Vec<Message>> {
        let (Some(op), Some(counters)) = (self.ops.first_mut(), self.counters.first()) else {
            return Ok(vec![message]);
        };
        let mut next = Collector::default();
        match message {
            Message::Batch(b) => {
                QueryMetrics::add(&counters.rows_in, b.num_rows() as u64);
                op.process_input(port, b, &mut next)?;
            }
            Message::Watermark(w) => op.handle_input_watermark(port, w, &mut next)?,
            other => return self.run_from(0, vec![other]),
        }
        let out = next.take();
        if self.ops.len() == 1 {
            return Ok(out
                .into_iter()
                .filter(|m| !matches!(m, Message::Batch(b) if b.num_rows() == 0))
                .collect());
        }
        self.run_from(1, out)
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

    /// Each operator's plan node id (the plan graph's: the source is 0) and
    /// whether its state may be split by key group
    /// ([`Operator::rescalable`]).
    pub fn node_ids(&self) -> Vec<(usize, bool)> {
        self.counters
            .iter()
            .zip(&self.ops)
            .map(|(c, op)| (c.position().unwrap_or(usize::MAX), op.rescalable()))
            .collect()
    }

    /// Operator `i`'s share of its old workers' states (see
    /// [`Operator::split_state`]).
    ///
    /// # Errors
    /// See [`Operator::split_state`].
    pub fn split_state(
        &self,
        i: usize,
        parts: Vec<OperatorState>,
        owns: &crate::exec::rescale::Owns<'_>,
    ) -> ExecResult<OperatorState> {
        match self.ops.get(i) {
            Some(op) => op.split_state(parts, owns),
            None => Err(crate::error::ExecError::Internal(format!(
                "no operator {i} to split a state for"
            ))),
        }
    }

    /// The name of operator `i` (for messages).
    pub fn operator_name(&self, i: usize) -> &'static str {
        self.ops.get(i).map_or("?", |op| op.name())
    }

    /// How many operators it runs (a snapshot holds one state each).
    pub fn operators(&self) -> usize {
        self.ops.len()
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
            let started = std::time::Instant::now();
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
            QueryMetrics::add(&counters.busy_ns, started.elapsed().as_nanos() as u64);
            messages = next.take();
        }
        messages.retain(|m| !matches!(m, Message::Batch(b) if b.num_rows() == 0));
        Ok(messages)
    }
}
