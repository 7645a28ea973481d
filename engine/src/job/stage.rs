//! Runs one instance of an operator stage: aligned input in, its pipeline,
//! output on to the next stage (or to the sinks).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;

use crate::error::ExecResult;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::Message;
use crate::exec::pipeline::Pipeline;
use crate::job::checkpointing::Checkpointing;
use crate::job::edge::{Inputs, Output};

/// Where a stage instance's output goes.
pub(crate) trait Downstream {
    /// Takes one message; `false` once there is nobody to take more.
    ///
    /// # Errors
    /// Routing or writing failed.
    fn send(&mut self, message: Message) -> ExecResult<bool>;

    /// How many messages wait to be taken (a gauge).
    fn queued(&self) -> usize {
        0
    }

    /// Called when no message came for [`TICK`]: timed work (a sink's
    /// periodic flush).
    ///
    /// # Errors
    /// That work failed.
    fn tick(&mut self) -> ExecResult<()> {
        Ok(())
    }
}

/// How long a stage waits for input before it lets its output do timed work.
pub(crate) const TICK: Duration = Duration::from_millis(100);

impl Downstream for Output {
    fn send(&mut self, message: Message) -> ExecResult<bool> {
        Output::send(self, message)
    }

    fn queued(&self) -> usize {
        Output::queued(self)
    }
}

/// What a partition worker records as it runs.
pub(crate) struct Probe {
    /// The worker's own counters and gauges.
    pub metrics: Arc<QueryMetrics>,
    /// How long each message takes through the operators.
    pub latency: Option<Histogram>,
}

/// Feeds `inputs` through `pipeline` into `out` until the input ends (the
/// `End` went through) or the senders or receivers go away (a stop).
/// Returns whether the input ended. Under durable checkpoints the
/// pipeline's states go to each checkpoint as its barrier passes, under
/// the name `owner`.
///
/// # Errors
/// The first operator or output failure.
pub(crate) fn run(
    mut inputs: Inputs,
    mut pipeline: Pipeline,
    out: &mut dyn Downstream,
    probe: Option<&Probe>,
    checkpoint: Option<(&Checkpointing, &str)>,
) -> ExecResult<bool> {
    // the last checkpoint this instance gave its states to
    let mut last = checkpoint.map_or(0, |(c, _)| c.first_id() - 1);
    loop {
        let (port, message) = match inputs.next_within(TICK)? {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(false),
            Err(()) => {
                out.tick()?;
                continue;
            }
        };
        let started = Instant::now();
        if let Some(p) = probe {
            p.metrics
                .source_queue_depth
                .store(inputs.queued() as u64, Ordering::Relaxed);
            p.metrics
                .sink_queue_depth
                .store(out.queued() as u64, Ordering::Relaxed);
            if let Message::Batch(b) = &message {
                QueryMetrics::add(&p.metrics.rows_in, b.num_rows() as u64);
            }
        }
        let ended = matches!(message, Message::End);
        for mut m in pipeline.push_from(port, message)? {
            if let Message::Barrier(b) = &mut m {
                // the operators' state now reflects everything before the barrier
                b.hold(pipeline.retained_event_time());
                if let Some((c, owner)) = checkpoint {
                    c.give_operators(b.id, owner, &mut pipeline)?;
                    last = b.id;
                }
            }
            if !out.send(m)? {
                return Ok(false);
            }
        }
        if let Some(h) = probe.and_then(|p| p.latency.as_ref()) {
            h.observe(started.elapsed().as_secs_f64());
        }
        if ended {
            // the job may read other streams on: these states stand for
            // this instance in its later checkpoints
            if let Some((c, owner)) = checkpoint {
                c.give_ended_operators(last, owner, &mut pipeline)?;
            }
            return Ok(true);
        }
    }
}
