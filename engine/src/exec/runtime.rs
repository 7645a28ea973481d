//! Runs a physical plan on threads: a source thread (read + decode), a
//! worker thread (the operator pipeline) and a sink thread (encode + write),
//! joined by bounded channels so a slow stage slows the ones before it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use crossbeam_channel::{Receiver, Sender, bounded};

use crate::connectors::{Sink, Source, SourceContext, SourceCounters, SourceEvent};
use crate::error::{ExecError, ExecResult};
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::Message;
use crate::exec::pipeline::Pipeline;
use crate::plan::physical::PhysicalPlan;

/// Options for running a query.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Rows per source batch.
    pub batch_size: usize,
    /// Batches that may wait between two stages.
    pub channel_capacity: usize,
    /// Where the worker records how long each input batch takes through the
    /// operators (see [`crate::exec::export::Exporter`]).
    pub batch_latency: Option<prometheus_client::metrics::histogram::Histogram>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            batch_size: 8192,
            channel_capacity: 8,
            batch_latency: None,
        }
    }
}

/// What a finished query did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryStats {
    /// Rows read from the source.
    pub records_in: u64,
    /// Rows written to the sink.
    pub records_out: u64,
    /// Malformed input records counted and skipped.
    pub malformed: u64,
    /// Rows dropped because their window had already been emitted.
    pub late_dropped: u64,
    /// Rows dropped because their event time was NULL.
    pub null_time_dropped: u64,
    /// Last watermark (ms), if any.
    pub watermark: Option<i64>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

impl QueryStats {
    /// Input records per second.
    pub fn rate(&self) -> f64 {
        self.records_in as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A snapshot of a running query's progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Rows read so far.
    pub records_in: u64,
    /// Rows written so far.
    pub records_out: u64,
    /// Current watermark, if any.
    pub watermark: Option<i64>,
    /// Time since start.
    pub elapsed: Duration,
}

/// Stops a running query; cheap to clone and send to other threads.
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Asks the query to stop, as [`RunningQuery::stop`] does.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

enum SourceMsg {
    Batch(RecordBatch),
    /// The source ended by itself: close windows and flush.
    End,
}

/// A query running on its threads.
pub struct RunningQuery {
    shutdown: Arc<AtomicBool>,
    counters: Arc<SourceCounters>,
    metrics: Arc<QueryMetrics>,
    error: Arc<Mutex<Option<ExecError>>>,
    threads: Vec<JoinHandle<()>>,
    started: Instant,
    /// When the sink finished, for an exact elapsed time.
    finished: Arc<Mutex<Option<Instant>>>,
}

impl RunningQuery {
    /// Starts `plan`, reading from `source` and writing to `sink`.
    ///
    /// # Errors
    /// The pipeline cannot be built (an expression fails to compile).
    pub fn start(
        plan: &PhysicalPlan,
        mut source: Box<dyn Source>,
        ctx: &SourceContext,
        mut sink: Box<dyn Sink>,
        options: &RunOptions,
    ) -> ExecResult<Self> {
        let started = Instant::now();
        let metrics = Arc::new(QueryMetrics::default());
        let mut pipeline = Pipeline::build(plan, &metrics)?;
        let shutdown = ctx.shutdown.clone();
        let error: Arc<Mutex<Option<ExecError>>> = Arc::default();
        let (src_tx, src_rx): (Sender<SourceMsg>, Receiver<SourceMsg>) =
            bounded(options.channel_capacity);
        let (out_tx, out_rx): (Sender<RecordBatch>, Receiver<RecordBatch>) =
            bounded(options.channel_capacity);
        let fail = {
            let error = error.clone();
            let shutdown = shutdown.clone();
            move |e: ExecError| {
                if let Ok(mut slot) = error.lock() {
                    slot.get_or_insert(e);
                }
                shutdown.store(true, Ordering::SeqCst);
            }
        };

        let src_fail = fail.clone();
        let src_shutdown = shutdown.clone();
        let src_metrics = metrics.clone();
        let work_metrics = metrics.clone();
        let latency = options.batch_latency.clone();
        let source_thread = spawn("eddy-source", move || {
            loop {
                if src_shutdown.load(Ordering::Relaxed) {
                    return;
                }
                match source.poll() {
                    Ok(SourceEvent::Batch(b)) => {
                        if b.num_rows() == 0 {
                            continue;
                        }
                        let blocked = src_tx.is_full().then(Instant::now);
                        if src_tx.send(SourceMsg::Batch(b)).is_err() {
                            return;
                        }
                        if let Some(t) = blocked {
                            QueryMetrics::add(
                                &src_metrics.source_blocked_us,
                                t.elapsed().as_micros() as u64,
                            );
                        }
                    }
                    Ok(SourceEvent::Idle) => std::thread::sleep(Duration::from_millis(1)),
                    Ok(SourceEvent::End) => {
                        let _ = src_tx.send(SourceMsg::End);
                        return;
                    }
                    Err(e) => return src_fail(e.into()),
                }
            }
        })?;

        let work_fail = fail.clone();
        let worker_thread = spawn("eddy-worker", move || {
            let result = (|| -> ExecResult<()> {
                for msg in src_rx.iter() {
                    work_metrics
                        .source_queue_depth
                        .store(src_rx.len() as u64, Ordering::Relaxed);
                    work_metrics
                        .sink_queue_depth
                        .store(out_tx.len() as u64, Ordering::Relaxed);
                    let started = Instant::now();
                    let outputs = match msg {
                        SourceMsg::Batch(b) => pipeline.push(Message::Batch(b))?,
                        SourceMsg::End => pipeline.close()?,
                    };
                    if let Some(h) = &latency {
                        h.observe(started.elapsed().as_secs_f64());
                    }
                    for b in outputs {
                        if out_tx.send(b).is_err() {
                            return Ok(());
                        }
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                work_fail(e);
            }
        })?;

        let sink_metrics = metrics.clone();
        let sink_fail = fail;
        let finished: Arc<Mutex<Option<Instant>>> = Arc::default();
        let sink_finished = finished.clone();
        let sink_thread = spawn("eddy-sink", move || {
            let result = (|| -> ExecResult<()> {
                for b in out_rx.iter() {
                    sink.write(&b)?;
                    QueryMetrics::add(&sink_metrics.rows_out, b.num_rows() as u64);
                }
                sink.close()?;
                Ok(())
            })();
            if let Err(e) = result {
                sink_fail(e);
            }
            if let Ok(mut f) = sink_finished.lock() {
                *f = Some(Instant::now());
            }
        })?;

        Ok(Self {
            shutdown,
            counters: ctx.counters.clone(),
            metrics,
            error,
            threads: vec![source_thread, worker_thread, sink_thread],
            started,
            finished,
        })
    }

    /// Asks the query to stop (as Ctrl-C does): the source stops reading and
    /// windows still open are not emitted.
    pub fn stop(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// A handle that stops the query from elsewhere (a signal handler).
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.shutdown.clone())
    }

    /// Whether all threads have finished.
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    /// The live counters.
    pub fn metrics(&self) -> &Arc<QueryMetrics> {
        &self.metrics
    }

    /// The source's live counters (rows read, malformed records).
    pub fn source_counters(&self) -> &Arc<SourceCounters> {
        &self.counters
    }

    /// Progress so far.
    pub fn progress(&self) -> Progress {
        Progress {
            records_in: self.counters.records.load(Ordering::Relaxed),
            records_out: self.metrics.rows_out.load(Ordering::Relaxed),
            watermark: self.metrics.watermark(),
            elapsed: self.started.elapsed(),
        }
    }

    /// Waits for the query to finish.
    ///
    /// # Errors
    /// The first error any stage hit.
    pub fn wait(self) -> ExecResult<QueryStats> {
        for t in self.threads {
            let name = t.thread().name().unwrap_or("query").to_string();
            if let Err(payload) = t.join() {
                let why = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                return Err(ExecError::Worker(
                    name,
                    format!("{why} (a bug in Eddy: please report it)"),
                ));
            }
        }
        if let Some(e) = self.error.lock().ok().and_then(|mut e| e.take()) {
            return Err(e);
        }
        let m = &self.metrics;
        let end = self
            .finished
            .lock()
            .ok()
            .and_then(|f| *f)
            .unwrap_or_else(Instant::now);
        Ok(QueryStats {
            records_in: self.counters.records.load(Ordering::Relaxed),
            records_out: m.rows_out.load(Ordering::Relaxed),
            malformed: self.counters.malformed.load(Ordering::Relaxed),
            late_dropped: m.late_rows.load(Ordering::Relaxed),
            null_time_dropped: m.null_time_rows.load(Ordering::Relaxed),
            watermark: m.watermark(),
            elapsed: end.duration_since(self.started),
        })
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> ExecResult<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|e| ExecError::Worker(name.to_string(), e.to_string()))
}
