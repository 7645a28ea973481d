//! The end of a job's DAG: writes rows to the sink and dead letters to the
//! dead-letter sink, shows rows to subscribers, and answers checkpoint
//! barriers once the rows before them are durable.

use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::connectors::Sink;
use crate::connectors::dead_letter::DeadLetterSink;
use crate::error::ExecResult;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::Message;
use crate::job::manager::Subscribers;
use crate::job::source_stage::Ack;
use crate::job::stage::Downstream;

/// Writes what reaches the end of the DAG.
pub(crate) struct SinkWriter {
    pub sink: Box<dyn Sink>,
    pub dead: Option<Box<dyn DeadLetterSink>>,
    pub metrics: Arc<QueryMetrics>,
    /// Barrier answers, to the source stage.
    pub acks: Sender<Ack>,
    pub subscribers: Arc<Subscribers>,
    pub closed: bool,
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
}

impl Downstream for SinkWriter {
    fn send(&mut self, message: Message) -> ExecResult<bool> {
        match message {
            Message::Batch(b) => {
                let started = std::time::Instant::now();
                self.sink.write(&b)?;
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
                if let Some(dl) = &mut self.dead {
                    dl.flush()?;
                }
                let _ = self.acks.send(Ack {
                    id: b.id,
                    held_since: b.held_since,
                });
            }
            Message::Watermark(_) => {}
            Message::End => self.close()?,
        }
        Ok(true)
    }
}
