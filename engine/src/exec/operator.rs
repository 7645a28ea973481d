//! The push-based operator contract, the one message type that flows
//! through a running query (between operators and between stages) and the
//! [`Collector`] operators emit into.

use arrow::record_batch::RecordBatch;

pub use crate::connectors::dead_letter::DeadLetter;
use crate::error::ExecResult;

/// A checkpoint barrier: every message before it belongs to checkpoint `id`,
/// every message after it to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointBarrier {
    /// Checkpoint number, increasing.
    pub id: u64,
    /// The earliest event time (ms) whose rows an operator before this
    /// point still holds back (an open window, an unreleased row); `None`
    /// when nothing is held. Stages fill it in as the barrier passes, so
    /// the source knows which offsets it may commit (at-least-once).
    pub held_since: Option<i64>,
}

impl CheckpointBarrier {
    /// A fresh barrier, nothing held yet.
    pub fn new(id: u64) -> Self {
        Self {
            id,
            held_since: None,
        }
    }

    /// Records that rows from `time` on are held (keeps the earliest).
    pub fn hold(&mut self, time: Option<i64>) {
        self.held_since = match (self.held_since, time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        };
    }
}

/// An operator's state at a checkpoint barrier, as named Arrow batches
/// whose layout the operator defines (its `snapshot` documents it); empty
/// for a stateless operator. A WebAssembly aggregate's state is its
/// module's bytes, in a BINARY column.
#[derive(Debug, Clone, Default)]
pub struct OperatorState {
    /// (part name, rows), in the order the operator wrote them.
    pub parts: Vec<(String, RecordBatch)>,
}

impl OperatorState {
    /// Adds a part.
    pub fn push(&mut self, name: &str, batch: RecordBatch) {
        self.parts.push((name.to_string(), batch));
    }

    /// The parts called `name`, in order.
    pub fn parts<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a RecordBatch> + 'a {
        self.parts
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, b)| b)
    }

    /// The one part called `name`.
    ///
    /// # Errors
    /// There is none (a snapshot of another operator).
    pub fn part(&self, name: &str) -> ExecResult<&RecordBatch> {
        let found = self.parts.iter().find(|(n, _)| n == name).map(|(_, b)| b);
        found.ok_or_else(|| {
            crate::error::ExecError::Internal(format!("the state to restore has no '{name}' part"))
        })
    }

    /// Rows held, over all parts (for tests and metrics).
    pub fn rows(&self) -> usize {
        self.parts.iter().map(|(_, b)| b.num_rows()).sum()
    }
}

/// What flows from one operator to the next and from one stage to the next.
/// Every stage and pipeline passes on each variant it does not consume.
#[derive(Debug, Clone)]
pub enum Message {
    /// Rows.
    Batch(RecordBatch),
    /// Event time has reached this point (ms): no more rows with a smaller
    /// event time are expected, so windows ending at or before it may close.
    Watermark(i64),
    /// A checkpoint barrier.
    Barrier(CheckpointBarrier),
    /// Input rows an operator could not use (too late for any open window),
    /// on their way to the dead-letter sink; operators pass them on untouched.
    DeadLetter(DeadLetter),
    /// Records a source rejected as malformed, as dead-letter JSON lines
    /// (`format.on_error = 'dead_letter'`); passed on untouched.
    Malformed(Vec<String>),
    /// The input ended by itself (not a stop): operators emit what they still
    /// hold ([`Operator::on_close`]) and it is passed on, last.
    End,
}

/// Where an operator puts what it emits; the pipeline hands the messages to
/// the next operator in order.
#[derive(Debug, Default)]
pub struct Collector {
    messages: Vec<Message>,
}

impl Collector {
    /// Emits a message.
    pub fn push(&mut self, message: Message) {
        self.messages.push(message);
    }

    /// The messages emitted so far.
    pub fn iter(&self) -> std::slice::Iter<'_, Message> {
        self.messages.iter()
    }

    /// Takes the messages emitted.
    pub fn take(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.messages)
    }
}

/// A push-based streaming operator. Each method may emit any number of
/// messages into `out`, which go to the next operator in order.
pub trait Operator: Send {
    /// Short name for errors and metrics.
    fn name(&self) -> &'static str;

    /// Handles one input batch.
    ///
    /// # Errors
    /// An evaluation failure; the query stops with it.
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()>;

    /// Handles a batch that came in on input `port` of an operator with
    /// several inputs (a join, UNION ALL); the default treats every input
    /// as one.
    ///
    /// # Errors
    /// As [`Operator::process_batch`].
    fn process_input(
        &mut self,
        port: usize,
        batch: RecordBatch,
        out: &mut Collector,
    ) -> ExecResult<()> {
        let _ = port;
        self.process_batch(batch, out)
    }

    /// Handles input `port`'s watermark (each input's is the minimum over
    /// its own senders); the default treats every input as one.
    ///
    /// # Errors
    /// As [`Operator::handle_watermark`].
    fn handle_input_watermark(
        &mut self,
        port: usize,
        watermark: i64,
        out: &mut Collector,
    ) -> ExecResult<()> {
        let _ = port;
        self.handle_watermark(watermark, out)
    }

    /// Handles a watermark; the default forwards it.
    ///
    /// # Errors
    /// A failure while emitting closed windows.
    fn handle_watermark(&mut self, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        out.push(Message::Watermark(watermark));
        Ok(())
    }

    /// Handles a checkpoint barrier; the default forwards it. Stateful
    /// operators will snapshot their state here.
    ///
    /// # Errors
    /// A failure while snapshotting.
    fn handle_checkpoint(
        &mut self,
        barrier: CheckpointBarrier,
        out: &mut Collector,
    ) -> ExecResult<()> {
        out.push(Message::Barrier(barrier));
        Ok(())
    }

    /// The earliest event time (ms) of any input row whose effect this
    /// operator still holds back (an open window's start, a held row); `None`
    /// when every row it has seen is reflected in its output. Asked at
    /// checkpoint barriers, to know which source offsets may be committed;
    /// `Some(i64::MIN)` holds everything back.
    fn retained_event_time(&self) -> Option<i64> {
        None
    }

    /// The operator's state, taken right after a checkpoint barrier has
    /// passed it: what a fresh operator built from the same plan node needs,
    /// after [`Operator::restore`], to go on exactly as this one would.
    /// Stateless operators keep the default (nothing).
    ///
    /// # Errors
    /// A failure while reading the state (an accumulator, a UDF).
    fn snapshot(&mut self) -> ExecResult<OperatorState> {
        Ok(OperatorState::default())
    }

    /// Loads a [`Operator::snapshot`] into this fresh operator, before any input.
    ///
    /// # Errors
    /// A state this operator did not write (another plan, a bug).
    fn restore(&mut self, state: OperatorState) -> ExecResult<()> {
        if state.parts.is_empty() {
            Ok(())
        } else {
            Err(crate::error::ExecError::Internal(format!(
                "operator '{}' keeps no state, but a state was given to restore",
                self.name()
            )))
        }
    }

    /// Whether a state of this operator may be split by key group and
    /// merged (a restore with another number of workers, see
    /// [`Self::split_state`]). `false` (the default): its parts refer to
    /// one another in a way no split has been written for.
    fn rescalable(&self) -> bool {
        false
    }

    /// The share of the old workers' states of this operator (`parts`, by
    /// old worker) that a new worker holds: the keys `owns` says it owns.
    /// Only called when [`Self::rescalable`]. The default
    /// ([`split_keyed`](crate::exec::rescale::split_keyed)) fits states
    /// whose keyed parts hold rows that stand alone.
    ///
    /// # Errors
    /// Keys that cannot be hashed, or parts of another shape.
    fn split_state(
        &self,
        parts: Vec<OperatorState>,
        owns: &crate::exec::rescale::Owns<'_>,
    ) -> ExecResult<OperatorState> {
        crate::exec::rescale::split_keyed(parts, owns)
    }

    /// The input has ended (not cancelled): emit whatever is still held.
    ///
    /// # Errors
    /// A failure while emitting.
    fn on_close(&mut self, out: &mut Collector) -> ExecResult<()> {
        let _ = out;
        Ok(())
    }
}
