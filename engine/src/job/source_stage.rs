//! The source stage of a job: reads the source, generates watermarks (per
//! source partition, with the idle timeout: the source is where silence is
//! seen), runs the operators before the first exchange and sends the rows
//! on. For a source with progress to commit it also sends checkpoint
//! barriers and commits what the sink has acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use std::collections::VecDeque;

use crate::connectors::{Position, Source, SourceEvent};
use crate::error::{ExecError, ExecResult};
use crate::exec::operator::{CheckpointBarrier, Message};
use crate::exec::pipeline::Pipeline;
use crate::exec::watermark::{BatchTimes, WatermarkGenerator};
use crate::job::checkpointing::{Checkpointing, CompletedOrNot};
use crate::job::edge::Output;

/// The sink's answer to a barrier: everything before it is written.
pub(crate) struct Ack {
    pub id: u64,
    /// Rows from this event time on are still held by operators.
    pub held_since: Option<i64>,
}

/// How long the last checkpoint of a run may wait for the sink.
const FINAL_ACK_WAIT: Duration = Duration::from_secs(30);

/// Barrier bookkeeping of the source stage: which recorded source
/// position may be committed (at-least-once).
///
/// After every batch the stage records the source's position with the
/// largest event time of the batch's rows per source partition (a *mark*),
/// and at every barrier the position at the barrier. When the sink
/// acknowledges barrier `id` — every row before it has passed every stage
/// and is written — with the earliest event time operators still hold
/// (`held_since`), then for each partition the first batch before the
/// barrier with a row of that partition at or after that time may still be
/// needed after a restart: the partition's position recorded just before it
/// is committed; when nothing is held, its position at the barrier. Rows of open windows are
/// read again after a crash, never lost. (The checkpoint issue makes state
/// durable; then the position at the barrier is committed with it.)
pub(crate) struct Checkpoints {
    pub interval: Duration,
    pub last: Instant,
    pub acks: Receiver<Ack>,
    /// Set when the job takes durable checkpoints: then a position is
    /// committed once the checkpoint of its barrier is durable, whatever
    /// the operators hold (their state is in the checkpoint).
    durable: Option<Durable>,
    /// The id of the next barrier.
    next_id: u64,
    /// Marks not yet committed, oldest first.
    marks: VecDeque<Mark>,
}

/// A recorded source position.
struct Mark {
    position: Position,
    /// The largest event time of the rows read since the previous mark.
    max_time: BatchTimes,
    /// Set for the position at a barrier.
    barrier: Option<u64>,
}

/// Marks kept before every other batch mark is dropped (a long-held
/// window would otherwise keep one per batch).
const MAX_MARKS: usize = 4096;

/// A durable checkpoint's share of the source stage.
pub(crate) struct Durable {
    pub checkpointing: Checkpointing,
    /// The writer's report of each checkpoint.
    pub completed: Receiver<CompletedOrNot>,
    /// The source stream's name and the prefix pipeline's owner name.
    pub stream: String,
    pub owner: String,
}

impl Checkpoints {
    pub(crate) fn new(interval: Duration, acks: Receiver<Ack>) -> Self {
        Self {
            interval,
            last: Instant::now(),
            acks,
            durable: None,
            next_id: 1,
            marks: VecDeque::new(),
        }
    }

    /// Durable checkpoints, every `checkpointing.interval`.
    pub(crate) fn durable(durable: Durable, acks: Receiver<Ack>) -> Self {
        let mut c = Self::new(durable.checkpointing.interval, acks);
        c.next_id = durable.checkpointing.first_id();
        c.durable = Some(durable);
        c
    }

    /// A batch with rows up to event time `max_time` was read; the source is now at `position`.
    fn batch(&mut self, position: Position, max_time: BatchTimes) {
        self.marks.push_back(Mark {
            position,
            max_time,
            barrier: None,
        });
        if self.marks.len() > MAX_MARKS {
            self.thin();
        }
    }

    /// Drops every other batch mark, its rows counted into the next kept one.
    fn thin(&mut self) {
        let mut kept: VecDeque<Mark> = VecDeque::with_capacity(self.marks.len() / 2 + 1);
        let mut carry: Option<BatchTimes> = None;
        for (i, mut m) in std::mem::take(&mut self.marks).into_iter().enumerate() {
            if let Some(c) = carry.take() {
                m.max_time = merged(c, m.max_time);
            }
            if m.barrier.is_none() && i % 2 == 0 {
                carry = Some(m.max_time);
            } else {
                kept.push_back(m);
            }
        }
        if let Some(c) = carry {
            match kept.back_mut() {
                // the rows of a dropped last mark cannot go to a later one
                Some(last) => {
                    let t = std::mem::replace(&mut last.max_time, BatchTimes::All(i64::MIN));
                    last.max_time = merged(t, c);
                }
                None => kept.push_back(Mark {
                    position: Position::default(),
                    max_time: c,
                    barrier: None,
                }),
            }
        }
        self.marks = kept;
    }

    /// A barrier follows the rows read so far: its id.
    fn barrier(&mut self, position: Position) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.marks.push_back(Mark {
            position,
            max_time: BatchTimes::All(i64::MIN),
            barrier: Some(id),
        });
        id
    }

    /// Barrier `id` came back with `held_since`: the position that may now
    /// be committed (per partition), if any.
    fn commit_point(&mut self, id: u64, held_since: Option<i64>) -> Option<Position> {
        let end = self.marks.iter().position(|m| m.barrier == Some(id))?;
        let mut splits = Vec::new();
        // marks every partition is done with can go
        let mut droppable = end;
        for (topic, partition, at_barrier) in &self.marks[end].position.splits {
            let first_held = held_since.and_then(|t| {
                self.marks
                    .iter()
                    .take(end + 1)
                    .position(|m| m.max_time.of(topic, *partition) >= t)
            });
            let offset = match first_held {
                Some(0) => None,
                Some(h) => offset_of(&self.marks[h - 1].position, topic, *partition),
                None => Some(*at_barrier),
            };
            droppable = droppable.min(first_held.map_or(end, |h| h.saturating_sub(1)));
            if let Some(o) = offset {
                splits.push((topic.clone(), *partition, o));
            }
        }
        // a mark is needed while some partition may commit at it later
        if droppable > 0 {
            self.marks.drain(..droppable);
        }
        (!splits.is_empty()).then_some(Position { splits })
    }
}

/// A partition's offset in a position.
fn offset_of(p: &Position, topic: &str, partition: i32) -> Option<i64> {
    p.splits
        .iter()
        .find(|s| s.0 == topic && s.1 == partition)
        .map(|s| s.2)
}

/// The larger of two batches' event times, per partition.
fn merged(a: BatchTimes, b: BatchTimes) -> BatchTimes {
    match (a, b) {
        (BatchTimes::All(x), BatchTimes::All(y)) => BatchTimes::All(x.max(y)),
        (BatchTimes::All(x), BatchTimes::Each(v)) | (BatchTimes::Each(v), BatchTimes::All(x)) => {
            // a batch of unknown partitions counts for every partition
            BatchTimes::All(v.iter().map(|e| e.2).fold(x, i64::max))
        }
        (BatchTimes::Each(mut v), BatchTimes::Each(w)) => {
            for (t, p, m) in w {
                match v.iter_mut().find(|e| e.0 == t && e.1 == p) {
                    Some(e) => e.2 = e.2.max(m),
                    None => v.push((t, p, m)),
                }
            }
            BatchTimes::Each(v)
        }
    }
}

/// The source stage (one instance).
pub(crate) struct SourceStage {
    pub source: Box<dyn Source>,
    pub watermark: Option<WatermarkGenerator>,
    pub idle: Option<IdleClock>,
    /// The operators before the first exchange.
    pub prefix: Pipeline,
    pub out: Output,
    pub shutdown: Arc<AtomicBool>,
    /// Set (before `shutdown`) when the job was asked to stop.
    pub stopping: Arc<AtomicBool>,
    /// Set for a source that commits progress or a job that checkpoints.
    pub checkpoints: Option<Checkpoints>,
}

impl SourceStage {
    /// Reads until the source ends, a stop or a failure downstream.
    ///
    /// # Errors
    /// A source, operator or commit failure.
    pub fn run(mut self) -> ExecResult<()> {
        if let Some(w) = &mut self.watermark {
            w.set_partitions(&self.source.partitions());
        }
        let result = self.read();
        // on a stop, an error elsewhere or the end: commit what the sink has
        if result.is_ok() || self.shutdown.load(Ordering::Relaxed) {
            let last = self.final_checkpoint();
            result.and(last)
        } else {
            result
        }
    }

    fn read(&mut self) -> ExecResult<()> {
        loop {
            if self.shutdown.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.take_acks()?;
            let event = self.source.poll()?;
            let lines = self.source.take_dead_letters();
            if !lines.is_empty() && !self.push(Message::Malformed(lines))? {
                return Ok(());
            }
            match event {
                SourceEvent::Batch(b) => {
                    if b.num_rows() == 0 {
                        continue;
                    }
                    if let Some(idle) = &mut self.idle {
                        idle.saw_input();
                    }
                    let advanced = match &mut self.watermark {
                        Some(w) => w.observe(&b)?,
                        None => None,
                    };
                    if let Some(c) = &mut self.checkpoints
                        && let Some(position) = self.source.position()
                    {
                        // without an event-time column every row may be held
                        let max = match &self.watermark {
                            Some(w) => w.max_event_times(&b)?,
                            None => BatchTimes::All(i64::MAX),
                        };
                        c.batch(position, max);
                    }
                    if !self.push(Message::Batch(b))? {
                        return Ok(());
                    }
                    if let Some(w) = advanced
                        && !self.push(Message::Watermark(w))?
                    {
                        return Ok(());
                    }
                    if !self.maybe_checkpoint()? {
                        return Ok(());
                    }
                }
                SourceEvent::Idle => {
                    let tick = self.idle.as_mut().and_then(IdleClock::tick);
                    let advanced = match (tick, &mut self.watermark) {
                        (Some(ms), Some(w)) => w.idle_advance(ms),
                        _ => None,
                    };
                    if let Some(w) = advanced
                        && !self.push(Message::Watermark(w))?
                    {
                        return Ok(());
                    }
                    if !self.maybe_checkpoint()? {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                SourceEvent::Watermark(w) => {
                    if self.watermark.is_none() && !self.push(Message::Watermark(w))? {
                        return Ok(());
                    }
                    if !self.maybe_checkpoint()? {
                        return Ok(());
                    }
                }
                SourceEvent::End => {
                    // a source stops early when the job stops (the
                    // generator, a followed file): that is not the end of
                    // its input, and the stop's last barrier follows
                    if self.shutdown.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    self.push(Message::End)?;
                    return self.ended();
                }
            }
        }
    }

    /// Pushes a message through the operators and sends what comes out;
    /// `false` once the next stage has gone.
    fn push(&mut self, message: Message) -> ExecResult<bool> {
        for mut m in self.prefix.push(message)? {
            if let Message::Barrier(b) = &mut m {
                b.hold(self.prefix.retained_event_time());
            }
            if !self.out.send(m)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sends the barriers due; `false` once the next stage has gone. Under
    /// durable checkpoints every source of the job sends every barrier the
    /// job's trigger asks for.
    fn maybe_checkpoint(&mut self) -> ExecResult<bool> {
        let due = match &mut self.checkpoints {
            Some(c) => match &c.durable {
                Some(d) => d.checkpointing.trigger.due(),
                None if c.last.elapsed() >= c.interval => {
                    c.last = Instant::now();
                    c.next_id
                }
                None => 0,
            },
            None => 0,
        };
        self.barriers_until(due).map(|sent| sent.is_some())
    }

    /// Sends barriers up to id `last`; the last one sent (`Some(0)`: none
    /// was due), or `None` once the next stage has gone.
    fn barriers_until(&mut self, last: u64) -> ExecResult<Option<u64>> {
        let mut sent = 0;
        while self.checkpoints.as_ref().is_some_and(|c| c.next_id <= last) {
            match self.barrier()? {
                Some(id) => sent = id,
                None => return Ok(None),
            }
        }
        Ok(Some(sent))
    }

    /// Sends a barrier on; its id, or `None` once the next stage has gone.
    /// Under durable checkpoints the source's resume state and the prefix
    /// operators' states go to the checkpoint.
    fn barrier(&mut self) -> ExecResult<Option<u64>> {
        let Some(c) = &mut self.checkpoints else {
            return Ok(None);
        };
        let position = self.source.position();
        let id = match (position, &c.durable) {
            (Some(p), _) => c.barrier(p),
            (None, Some(_)) => c.barrier(Position::default()),
            (None, None) => return Ok(None),
        };
        let durable = c
            .durable
            .as_ref()
            .map(|d| (d.checkpointing.clone(), d.stream.clone(), d.owner.clone()));
        let resume = match &durable {
            Some((_, stream, _)) => Some(self.source.resume_state().ok_or_else(|| {
                ExecError::Internal(format!(
                    "stream '{stream}': its connector cannot resume from a checkpoint"
                ))
            })?),
            None => None,
        };
        let sent = self.push(Message::Barrier(CheckpointBarrier::new(id)))?;
        if let (Some((checkpointing, stream, owner)), Some(state)) = (durable, resume) {
            checkpointing.parts.give(
                id,
                crate::checkpoint::writer::Contribution::Source {
                    name: stream,
                    state,
                    watermark: self.watermark.as_ref().map(WatermarkGenerator::state),
                },
            );
            checkpointing.give_operators(id, &owner, &mut self.prefix)?;
        }
        Ok(sent.then_some(id))
    }

    /// The source was read to its end: under durable checkpoints, its
    /// position and its operators as they are now stand for it in the
    /// job's later checkpoints (the job may read other streams on).
    fn ended(&mut self) -> ExecResult<()> {
        let Some((c, d)) = self
            .checkpoints
            .as_ref()
            .and_then(|c| c.durable.as_ref().map(|d| (c, d)))
        else {
            return Ok(());
        };
        let after = c.next_id - 1;
        let state = self.source.resume_state().ok_or_else(|| {
            ExecError::Internal(format!(
                "stream '{}': its connector cannot resume from a checkpoint",
                d.stream
            ))
        })?;
        let parts = &d.checkpointing.parts;
        parts.ended(
            after,
            crate::checkpoint::writer::Contribution::Source {
                name: d.stream.clone(),
                state,
                watermark: self.watermark.as_ref().map(WatermarkGenerator::state),
            },
        );
        d.checkpointing
            .give_ended_operators(after, &d.owner, &mut self.prefix)
    }

    /// Commits what the sink has acknowledged (or, under durable
    /// checkpoints, what a durable checkpoint holds).
    fn take_acks(&mut self) -> ExecResult<()> {
        let Some(c) = &mut self.checkpoints else {
            return Ok(());
        };
        if let Some(d) = &c.durable {
            let done: Vec<CompletedOrNot> = d.completed.try_iter().collect();
            for done in done {
                if let Some(point) = c.commit_point(done?.id, None) {
                    self.source.commit(&point, false)?;
                }
            }
            return Ok(());
        }
        while let Ok(ack) = c.acks.try_recv() {
            if let Some(point) = c.commit_point(ack.id, ack.held_since) {
                self.source.commit(&point, false)?;
            }
        }
        Ok(())
    }

    /// One last barrier, waited for, and a synchronous commit. Under durable
    /// checkpoints only when the job was asked to stop (at the end of the
    /// input the sink records a finished checkpoint instead).
    fn final_checkpoint(&mut self) -> ExecResult<()> {
        let Some(c) = &self.checkpoints else {
            return Ok(());
        };
        if c.durable.is_some() && !self.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let id = match &c.durable {
            // the job's last barrier, the same for each of its sources
            Some(d) => {
                let last = d.checkpointing.trigger.stop();
                match self.barriers_until(last)? {
                    Some(_) => last,
                    None => return Ok(()),
                }
            }
            None => match self.barrier()? {
                Some(id) => id,
                None => return Ok(()),
            },
        };
        let deadline = Instant::now() + FINAL_ACK_WAIT;
        while let Some(c) = &mut self.checkpoints {
            let wait = deadline.saturating_duration_since(Instant::now());
            let acked = match &c.durable {
                Some(d) => match d.completed.recv_timeout(wait) {
                    Ok(done) => Ok((done?.id, None)),
                    Err(_) => Err(()),
                },
                None => c
                    .acks
                    .recv_timeout(wait)
                    .map(|a| (a.id, a.held_since))
                    .map_err(|_| ()),
            };
            // the sink or the writer has gone (it failed) or is stuck: keep
            // what was committed
            let Ok((acked, held_since)) = acked else {
                break;
            };
            let last = acked >= id;
            if let Some(point) = c.commit_point(acked, held_since) {
                self.source.commit(&point, last)?;
            }
            if last {
                break;
            }
        }
        Ok(())
    }
}

/// Tracks how long the source has been silent, for `idle_timeout`.
pub(crate) struct IdleClock {
    timeout: Duration,
    last_input: Instant,
    /// Event time already advanced during this silence (ms).
    advanced_ms: i64,
}

impl IdleClock {
    pub fn new(timeout_ms: i64) -> Self {
        Self {
            timeout: Duration::from_millis(timeout_ms.max(1) as u64),
            last_input: Instant::now(),
            advanced_ms: 0,
        }
    }

    fn saw_input(&mut self) {
        self.last_input = Instant::now();
        self.advanced_ms = 0;
    }

    /// How much further event time should advance now (ms), once the
    /// silence has outlasted the timeout.
    fn tick(&mut self) -> Option<i64> {
        let silent = self.last_input.elapsed();
        let over = silent.checked_sub(self.timeout)?;
        let due = over.as_millis() as i64;
        (due > self.advanced_ms).then(|| {
            let step = due - self.advanced_ms;
            self.advanced_ms = due;
            step
        })
    }
}

#[cfg(test)]
#[path = "source_stage_tests.rs"]
mod tests;
