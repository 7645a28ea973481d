//! The source stage of a job: reads the source, generates watermarks (per
//! source partition, with the idle timeout: the source is where silence is
//! seen), runs the operators before the first exchange and sends the rows
//! on. For a source with progress to commit it also sends checkpoint
//! barriers and commits what the sink has acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::connectors::{Source, SourceEvent};
use crate::error::ExecResult;
use crate::exec::operator::{CheckpointBarrier, Message};
use crate::exec::pipeline::Pipeline;
use crate::exec::watermark::WatermarkGenerator;
use crate::job::edge::Output;

/// The sink's answer to a barrier: everything before it is written.
pub(crate) struct Ack {
    pub id: u64,
    /// Rows from this event time on are still held by operators.
    pub held_since: Option<i64>,
}

/// How long the last checkpoint of a run may wait for the sink.
const FINAL_ACK_WAIT: Duration = Duration::from_secs(30);

/// Barrier bookkeeping of the source stage.
pub(crate) struct Checkpoints {
    pub interval: Duration,
    pub last: Instant,
    pub acks: Receiver<Ack>,
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
    /// Set for a source that commits progress.
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
                SourceEvent::End => {
                    self.push(Message::End)?;
                    return Ok(());
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

    /// Sends a barrier when one is due; `false` once the next stage has gone.
    fn maybe_checkpoint(&mut self) -> ExecResult<bool> {
        match &mut self.checkpoints {
            Some(c) if c.last.elapsed() >= c.interval => {
                c.last = Instant::now();
                Ok(self.barrier()?.is_some())
            }
            _ => Ok(true),
        }
    }

    /// Sends a barrier on; its id, or `None` once the next stage has gone.
    fn barrier(&mut self) -> ExecResult<Option<u64>> {
        let id = self.source.begin_checkpoint();
        let sent = self.push(Message::Barrier(CheckpointBarrier::new(id)))?;
        Ok(sent.then_some(id))
    }

    /// Commits what the sink has acknowledged.
    fn take_acks(&mut self) -> ExecResult<()> {
        let Some(c) = &self.checkpoints else {
            return Ok(());
        };
        while let Ok(ack) = c.acks.try_recv() {
            self.source.checkpoint_done(ack.id, ack.held_since, false)?;
        }
        Ok(())
    }

    /// One last barrier, waited for, and a synchronous commit.
    fn final_checkpoint(&mut self) -> ExecResult<()> {
        if self.checkpoints.is_none() {
            return Ok(());
        }
        let Some(id) = self.barrier()? else {
            return Ok(());
        };
        let deadline = Instant::now() + FINAL_ACK_WAIT;
        while let Some(c) = &self.checkpoints {
            let wait = deadline.saturating_duration_since(Instant::now());
            match c.acks.recv_timeout(wait) {
                Ok(ack) => {
                    let last = ack.id >= id;
                    self.source.checkpoint_done(ack.id, ack.held_since, last)?;
                    if last {
                        break;
                    }
                }
                // the sink has gone (it failed) or is stuck: keep what was committed
                Err(_) => break,
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
