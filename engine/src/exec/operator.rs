//! The push-based operator contract and the messages that flow between
//! operators: batches, watermarks and checkpoint barriers.

use arrow::record_batch::RecordBatch;

pub use crate::connectors::dead_letter::DeadLetter;
use crate::error::ExecResult;

/// A checkpoint barrier (state snapshots are taken when it passes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointBarrier {
    /// Checkpoint number.
    pub id: u64,
}

/// What flows from one operator to the next.
#[derive(Debug, Clone)]
pub enum Message {
    /// Rows.
    Batch(RecordBatch),
    /// Event time has reached this point (ms): no more rows with a smaller
    /// event time are expected, so windows ending at or before it may close.
    Watermark(i64),
    /// A checkpoint barrier.
    Checkpoint(CheckpointBarrier),
    /// The source has been silent past its `idle_timeout`: event time is
    /// taken to have advanced this many ms (the watermark operator turns it
    /// into a watermark).
    IdleAdvance(i64),
    /// Input rows an operator could not use (too late for any open window),
    /// on their way to the dead-letter sink; operators pass them on untouched.
    DeadLetter(DeadLetter),
}

/// A push-based streaming operator. Each method may push any number of
/// messages to `out`, which go to the next operator in order.
pub trait Operator: Send {
    /// Short name for errors and metrics.
    fn name(&self) -> &'static str;

    /// Handles one input batch.
    ///
    /// # Errors
    /// An evaluation failure; the query stops with it.
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Message>) -> ExecResult<()>;

    /// Handles a watermark; the default forwards it.
    ///
    /// # Errors
    /// A failure while emitting closed windows.
    fn handle_watermark(&mut self, watermark: i64, out: &mut Vec<Message>) -> ExecResult<()> {
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
        out: &mut Vec<Message>,
    ) -> ExecResult<()> {
        out.push(Message::Checkpoint(barrier));
        Ok(())
    }

    /// The source is idle and event time advanced by `ms` with the wall
    /// clock; the default forwards it.
    ///
    /// # Errors
    /// A failure while emitting.
    fn handle_idle_advance(&mut self, ms: i64, out: &mut Vec<Message>) -> ExecResult<()> {
        out.push(Message::IdleAdvance(ms));
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

    /// The source's partitions (topic, partition), told before the first
    /// batch to the operators before the exchange; the default ignores them.
    fn set_source_partitions(&mut self, partitions: &[(String, i32)]) {
        let _ = partitions;
    }

    /// The input has ended (not cancelled): emit whatever is still held.
    ///
    /// # Errors
    /// A failure while emitting.
    fn on_close(&mut self, out: &mut Vec<Message>) -> ExecResult<()> {
        let _ = out;
        Ok(())
    }
}
