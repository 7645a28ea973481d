//! The sink stage of a running query: the nodes after a gather, then
//! encoding and writing rows and dead letters; it answers checkpoint
//! barriers once the rows before them are durable.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use crossbeam_channel::{Receiver, Sender};

use crate::connectors::Sink;
use crate::connectors::dead_letter::{DeadLetter, DeadLetterSink};
use crate::error::ExecResult;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::Message;
use crate::exec::pipeline::Pipeline;

/// What a worker hands the sink stage.
pub(crate) enum SinkMsg {
    Rows(RecordBatch),
    Dead(DeadLetter),
    /// Partition `p`'s watermark advanced (used by the nodes after a gather).
    Watermark(usize, i64),
    /// Dead letters a source made itself (JSON lines).
    Lines(Vec<String>),
    /// A partition worker passed barrier `id`; its operators hold rows
    /// from this event time on (`None`: nothing held).
    Barrier(u64, Option<i64>),
}

/// The sink's answer to a barrier: everything before it is written.
pub(crate) struct Ack {
    pub id: u64,
    pub retained: Option<i64>,
}

/// The smaller of two retained times, `None` meaning "nothing held".
pub(crate) fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The sink stage: the nodes after a gather, then encode + write rows and
/// dead letters; answers checkpoint barriers once the rows before them are
/// durable.
pub(crate) struct SinkStage {
    pub sink: Box<dyn Sink>,
    pub dead: Option<Box<dyn DeadLetterSink>>,
    pub post: Pipeline,
    pub metrics: Arc<QueryMetrics>,
    pub acks: Sender<Ack>,
    pub workers: usize,
}

impl SinkStage {
    fn write(&mut self, messages: Vec<Message>) -> ExecResult<()> {
        for m in messages {
            match m {
                Message::Batch(b) => {
                    self.sink.write(&b)?;
                    QueryMetrics::add(&self.metrics.rows_out, b.num_rows() as u64);
                }
                Message::DeadLetter(d) => {
                    if let Some(dl) = &mut self.dead {
                        dl.write(&d)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn run(mut self, rx: &Receiver<SinkMsg>) -> ExecResult<()> {
        // the gathered watermark: the minimum over the workers
        let mut marks = vec![i64::MIN; self.workers];
        let mut combined = i64::MIN;
        // barriers seen from how many workers, and what they hold
        let mut barriers: Vec<(u64, usize, Option<i64>)> = Vec::new();
        for msg in rx.iter() {
            match msg {
                SinkMsg::Rows(b) => {
                    let out = self.post.push(Message::Batch(b))?;
                    self.write(out)?
                }
                SinkMsg::Dead(d) => self.write(vec![Message::DeadLetter(d)])?,
                SinkMsg::Lines(lines) => {
                    if let Some(dl) = &mut self.dead {
                        dl.write_lines(&lines)?;
                    }
                }
                SinkMsg::Barrier(id, retained) => {
                    let i = match barriers.iter().position(|b| b.0 == id) {
                        Some(i) => i,
                        None => {
                            barriers.push((id, 0, None));
                            barriers.len() - 1
                        }
                    };
                    barriers[i].1 += 1;
                    barriers[i].2 = earliest(barriers[i].2, retained);
                    if barriers[i].1 == self.workers {
                        let (id, _, retained) = barriers.remove(i);
                        // rows before the barrier are written: make them durable
                        self.sink.flush()?;
                        if let Some(dl) = &mut self.dead {
                            dl.flush()?;
                        }
                        let retained = earliest(retained, self.post.retained_event_time());
                        let _ = self.acks.send(Ack { id, retained });
                    }
                }
                SinkMsg::Watermark(p, w) => {
                    marks[p] = marks[p].max(w);
                    let min = marks.iter().copied().min().unwrap_or(i64::MIN);
                    if min > combined {
                        combined = min;
                        let out = self.post.push(Message::Watermark(min))?;
                        self.write(out)?;
                    }
                }
            }
        }
        let out = self.post.close()?;
        self.write(out)?;
        self.sink.close()?;
        if let Some(dl) = &mut self.dead {
            dl.close()?;
        }
        Ok(())
    }
}
