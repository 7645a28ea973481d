//! The end of a job's DAG: writes rows to the sink and dead letters to the
//! dead-letter sink, shows rows to subscribers, and answers checkpoint
//! barriers once the rows before them are durable.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::checkpoint::writer::Contribution;
use crate::connectors::Sink;
use crate::connectors::dead_letter::DeadLetterSink;
use crate::error::ExecResult;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::Message;
use crate::job::checkpointing::Checkpointing;
use crate::job::manager::Subscribers;
use crate::job::source_stage::Ack;
use crate::job::stage::Downstream;

/// Writes what reaches the end of the DAG.
pub(crate) struct SinkWriter {
    pub sink: Box<dyn Sink>,
    pub dead: Option<Box<dyn DeadLetterSink>>,
    pub metrics: Arc<QueryMetrics>,
    /// Barrier answers, to the source stage (without durable checkpoints).
    pub acks: Sender<Ack>,
    /// Under durable checkpoints: where the sink's state goes at each
    /// barrier, and the sink's name.
    pub checkpoint: Option<(Checkpointing, String)>,
    /// The id of the last barrier seen (or of the checkpoint restored).
    pub last_barrier: u64,
    pub subscribers: Arc<Subscribers>,
    pub closed: bool,
    /// How often written rows are flushed to the sink (`'flush.interval'`),
    /// besides at barriers and at the end.
    pub flush_interval: Duration,
    /// When rows were last flushed, and whether some were written since.
    pub flushed: Instant,
    pub dirty: bool,
}

impl SinkWriter {
    /// Flushes and closes the sinks (once).
    ///
    /// # Errors
    /// The final flush failed.
    pub fn close(&mut self) -> ExecResult<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        let rows = self.sink.close();
        let dead = self.dead.as_mut().map_or(Ok(()), |d| d.close());
        rows?;
        Ok(dead?)
    }

    /// The input ended and every result is written: under durable
    /// checkpoints a last, finished checkpoint records it (a restart has
    /// nothing to resume), and a sink that commits with checkpoints commits
    /// the last rows with it.
    ///
    /// # Errors
    /// The sink cannot make its rows durable, or the commit failed.
    fn finished(&mut self) -> ExecResult<()> {
        let Some((c, name)) = &self.checkpoint else {
            return Ok(());
        };
        self.sink.flush()?;
        let id = self.last_barrier + 1;
        c.parts
            .finished(id, name.clone(), self.sink.checkpoint_state()?);
        if self.sink.commits_with_checkpoints() {
            let sources = c.durability.wait(id)?;
            self.sink.checkpoint_durable(id, &sources)?;
        }
        Ok(())
    }
}

impl SinkWriter {
    /// The query failed: the sink undoes what it can (see [`Sink::abort`]);
    /// dead letters are kept.
    pub fn abort(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        self.sink.abort();
        if let Some(d) = &mut self.dead {
            let _ = d.close();
        }
    }
}

impl Downstream for SinkWriter {
    /// Flushes rows written more than `flush_interval` ago, so a slow
    /// stream's output reaches the file (or the pipe) within that time.
    fn tick(&mut self) -> ExecResult<()> {
        if self.dirty && self.flushed.elapsed() >= self.flush_interval {
            self.sink.flush()?;
            if let Some(d) = &mut self.dead {
                d.flush()?;
            }
            (self.flushed, self.dirty) = (Instant::now(), false);
        }
        Ok(())
    }

    fn send(&mut self, message: Message) -> ExecResult<bool> {
        match message {
            Message::Batch(b) => {
                let started = std::time::Instant::now();
                self.sink.write(&b)?;
                self.dirty = true;
                self.tick()?;
                let busy = started.elapsed().as_nanos() as u64;
                QueryMetrics::add(&self.metrics.sink_busy_ns, busy);
                QueryMetrics::add(&self.metrics.rows_out, b.num_rows() as u64);
                self.subscribers.rows(&b);
            }
            Message::DeadLetter(d) => {
                if let Some(dl) = &mut self.dead {
                    dl.write(&d)?;
                }
            }
            Message::Malformed(lines) => {
                if let Some(dl) = &mut self.dead {
                    dl.write_lines(&lines)?;
                }
            }
            Message::Barrier(b) => {
                // rows before the barrier are written: make them durable
                self.sink.flush()?;
                (self.flushed, self.dirty) = (Instant::now(), false);
                if let Some(dl) = &mut self.dead {
                    dl.flush()?;
                }
                self.last_barrier = b.id;
                match &self.checkpoint {
                    Some((c, name)) => {
                        let state = self.sink.checkpoint_state()?;
                        c.parts.give(
                            b.id,
                            Contribution::Sink {
                                name: name.clone(),
                                state,
                            },
                        );
                        if self.sink.commits_with_checkpoints() {
                            let sources = c.durability.wait(b.id)?;
                            self.sink.checkpoint_durable(b.id, &sources)?;
                        }
                    }
                    None => {
                        let _ = self.acks.send(Ack {
                            id: b.id,
                            held_since: b.held_since,
                        });
                    }
                }
            }
            Message::Watermark(w) => {
                let idle = self.metrics.source_idle.load(Ordering::Relaxed);
                self.sink.watermark(w, idle)?;
            }
            Message::End => {
                // the input ended: no row will come at any event time
                self.sink.watermark(i64::MAX, false)?;
                self.finished()?;
                self.close()?;
            }
        }
        Ok(true)
    }
}
