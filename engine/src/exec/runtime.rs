//! Runs a physical plan on threads: a source thread (read, decode, the
//! operators before the exchange, routing), one or more partition workers
//! (the operators after it) and a sink thread (encode + write), joined by
//! bounded channels so a slow stage slows the ones before it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use crossbeam_channel::{Receiver, Sender, bounded};

use crate::connectors::dead_letter::DeadLetterSink;
use crate::connectors::{Sink, Source, SourceContext, SourceCounters, SourceEvent};
use crate::error::{ExecError, ExecResult};
use crate::exec::exchange::Router;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{CheckpointBarrier, Message};
use crate::exec::pipeline::Pipeline;
use crate::exec::sink_stage::{Ack, SinkMsg, SinkStage};
use crate::plan::physical::{PhysicalNode, PhysicalPlan};

/// Options for running a query.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Rows per source batch.
    pub batch_size: usize,
    /// Batches that may wait between two stages.
    pub channel_capacity: usize,
    /// Where the workers record how long each input batch takes through the
    /// operators (see [`crate::exec::export::Exporter`]).
    pub batch_latency: Option<prometheus_client::metrics::histogram::Histogram>,
    /// Worker threads sharing the keyed state of an aggregate (hash
    /// exchange on the group keys); 1 runs everything on one worker.
    pub partitions: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            batch_size: 8192,
            channel_capacity: 8,
            batch_latency: None,
            partitions: 1,
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
    /// Rows too late for any open window: dropped or dead-lettered.
    pub late_dropped: u64,
    /// Rows behind the watermark but within the allowed lateness (applied).
    pub late_accepted: u64,
    /// Rows sent to the dead-letter sink.
    pub dead_letters: u64,
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

/// What the source stage hands a worker.
enum WorkMsg {
    /// A batch, with the rows of it this worker owns (all when `None`).
    Batch(RecordBatch, Option<UInt32Array>),
    /// Event time advanced (sent to every worker).
    Watermark(i64),
    /// Checkpoint barrier `id` follows the rows before it (sent to every worker).
    Checkpoint(u64),
    /// The source ended by itself: close windows and flush.
    End,
}

/// How long the last checkpoint of a run may wait for the sink.
const FINAL_ACK_WAIT: Duration = Duration::from_secs(30);

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

/// Records the first error and stops every stage.
#[derive(Clone)]
struct Failure {
    error: Arc<Mutex<Option<ExecError>>>,
    shutdown: Arc<AtomicBool>,
}

impl Failure {
    fn fail(&self, e: ExecError) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(e);
        }
        self.shutdown.store(true, Ordering::SeqCst);
    }
}

/// The source stage: reads, runs the operators before the exchange, and
/// hands rows to the workers (routed by key hash when there are several).
struct SourceStage {
    source: Box<dyn Source>,
    prefix: Pipeline,
    router: Option<Router>,
    workers: Vec<Sender<WorkMsg>>,
    sink: Sender<SinkMsg>,
    metrics: Arc<QueryMetrics>,
    shutdown: Arc<AtomicBool>,
    idle: Option<IdleClock>,
    /// Checkpoints, for a source that commits progress.
    checkpoints: Option<Checkpoints>,
}

/// Barrier bookkeeping of the source stage.
struct Checkpoints {
    interval: Duration,
    last: Instant,
    acks: Receiver<Ack>,
}

impl SourceStage {
    fn run(mut self) -> ExecResult<()> {
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
            if !lines.is_empty() && self.sink.send(SinkMsg::Lines(lines)).is_err() {
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
                    let out = self.prefix.push(Message::Batch(b))?;
                    if !self.forward(out)? || !self.maybe_checkpoint() {
                        return Ok(());
                    }
                }
                SourceEvent::Idle => {
                    let tick = self.idle.as_mut().and_then(IdleClock::tick);
                    if let Some(advance) = tick {
                        let out = self.prefix.push(Message::IdleAdvance(advance))?;
                        if !self.forward(out)? {
                            return Ok(());
                        }
                    }
                    if !self.maybe_checkpoint() {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                SourceEvent::End => {
                    let out = self.prefix.close()?;
                    if self.forward(out)? {
                        for w in &self.workers {
                            let _ = w.send(WorkMsg::End);
                        }
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Sends a barrier when one is due; `false` once the workers have gone.
    fn maybe_checkpoint(&mut self) -> bool {
        match &mut self.checkpoints {
            Some(c) if c.last.elapsed() >= c.interval => {
                c.last = Instant::now();
                self.barrier().is_some()
            }
            _ => true,
        }
    }

    /// Sends a barrier to every worker; its id, or `None` once they have gone.
    fn barrier(&mut self) -> Option<u64> {
        let id = self.source.begin_checkpoint();
        self.workers
            .iter()
            .all(|w| w.send(WorkMsg::Checkpoint(id)).is_ok())
            .then_some(id)
    }

    /// Commits what the sink has acknowledged.
    fn take_acks(&mut self) -> ExecResult<()> {
        let Some(c) = &self.checkpoints else {
            return Ok(());
        };
        while let Ok(ack) = c.acks.try_recv() {
            self.source.checkpoint_done(ack.id, ack.retained, false)?;
        }
        Ok(())
    }

    /// One last barrier, waited for, and a synchronous commit.
    fn final_checkpoint(&mut self) -> ExecResult<()> {
        if self.checkpoints.is_none() {
            return Ok(());
        }
        let Some(id) = self.barrier() else {
            return Ok(());
        };
        let deadline = Instant::now() + FINAL_ACK_WAIT;
        while let Some(c) = &self.checkpoints {
            let wait = deadline.saturating_duration_since(Instant::now());
            match c.acks.recv_timeout(wait) {
                Ok(ack) => {
                    let last = ack.id >= id;
                    self.source.checkpoint_done(ack.id, ack.retained, last)?;
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

    /// Sends the prefix's output on; `false` once the workers have gone.
    fn forward(&mut self, messages: Vec<Message>) -> ExecResult<bool> {
        for m in messages {
            let ok = match m {
                Message::Batch(b) => self.route(b)?,
                Message::Watermark(w) => self
                    .workers
                    .iter()
                    .all(|tx| tx.send(WorkMsg::Watermark(w)).is_ok()),
                Message::DeadLetter(d) => self.sink.send(SinkMsg::Dead(d)).is_ok(),
                Message::Checkpoint(_) | Message::IdleAdvance(_) => true,
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn route(&mut self, batch: RecordBatch) -> ExecResult<bool> {
        let Some(router) = &self.router else {
            return Ok(self.send(0, WorkMsg::Batch(batch, None)));
        };
        for (p, rows) in router.route(&batch)?.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let rows = UInt32Array::from(rows);
            if !self.send(p, WorkMsg::Batch(batch.clone(), Some(rows))) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sends to worker `p`, recording time blocked on its full queue.
    fn send(&self, p: usize, msg: WorkMsg) -> bool {
        let tx = &self.workers[p];
        let blocked = tx.is_full().then(Instant::now);
        let ok = tx.send(msg).is_ok();
        if let Some(t) = blocked {
            QueryMetrics::add(
                &self.metrics.source_blocked_us,
                t.elapsed().as_micros() as u64,
            );
        }
        ok
    }
}

/// Tracks how long the source has been silent, for `idle_timeout`.
struct IdleClock {
    timeout: Duration,
    last_input: Instant,
    /// Event time already advanced during this silence (ms).
    advanced_ms: i64,
}

impl IdleClock {
    fn new(timeout_ms: i64) -> Self {
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

/// One partition worker: the operators after the exchange, over its rows.
fn run_worker(
    partition: usize,
    rx: Receiver<WorkMsg>,
    mut pipeline: Pipeline,
    out: Sender<SinkMsg>,
    metrics: Arc<QueryMetrics>,
    latency: Option<prometheus_client::metrics::histogram::Histogram>,
) -> ExecResult<()> {
    for msg in rx.iter() {
        metrics
            .source_queue_depth
            .store(rx.len() as u64, Ordering::Relaxed);
        metrics
            .sink_queue_depth
            .store(out.len() as u64, Ordering::Relaxed);
        let started = Instant::now();
        let outputs = match msg {
            WorkMsg::Batch(b, rows) => {
                let b = match rows {
                    Some(rows) => {
                        take_record_batch(&b, &rows).map_err(|e| ExecError::arrow("exchange", e))?
                    }
                    None => b,
                };
                QueryMetrics::add(&metrics.rows_in, b.num_rows() as u64);
                pipeline.push(Message::Batch(b))?
            }
            WorkMsg::Watermark(w) => pipeline.push(Message::Watermark(w))?,
            WorkMsg::Checkpoint(id) => {
                let mut outputs = pipeline.push(Message::Checkpoint(CheckpointBarrier { id }))?;
                outputs.retain(|m| !matches!(m, Message::Checkpoint(_)));
                let retained = pipeline.retained_event_time();
                if !send_all(&out, partition, outputs)
                    || out.send(SinkMsg::Barrier(id, retained)).is_err()
                {
                    return Ok(());
                }
                continue;
            }
            WorkMsg::End => pipeline.close()?,
        };
        if let Some(h) = &latency {
            h.observe(started.elapsed().as_secs_f64());
        }
        if !send_all(&out, partition, outputs) {
            return Ok(());
        }
    }
    Ok(())
}

/// Sends a worker's output to the sink stage; `false` once it has gone.
fn send_all(out: &Sender<SinkMsg>, partition: usize, outputs: Vec<Message>) -> bool {
    for m in outputs {
        let sent = match m {
            Message::Batch(b) => out.send(SinkMsg::Rows(b)),
            Message::DeadLetter(d) => out.send(SinkMsg::Dead(d)),
            Message::Watermark(w) => out.send(SinkMsg::Watermark(partition, w)),
            _ => Ok(()),
        };
        if sent.is_err() {
            return false;
        }
    }
    true
}

impl RunningQuery {
    /// Starts `plan`, reading from `source` and writing rows to `sink` and
    /// dead letters (if any) to `dead_letters`.
    ///
    /// With `options.partitions` > 1 and a plan with a hash exchange, the
    /// operators after the exchange run on that many worker threads, each
    /// owning the keys that hash to it.
    ///
    /// # Errors
    /// The pipeline cannot be built (an expression fails to compile).
    pub fn start(
        plan: &PhysicalPlan,
        source: Box<dyn Source>,
        ctx: &SourceContext,
        sink: Box<dyn Sink>,
        dead_letters: Option<Box<dyn DeadLetterSink>>,
        options: &RunOptions,
    ) -> ExecResult<Self> {
        let started = Instant::now();
        let split = plan.exchange().filter(|_| options.partitions > 1);
        let n = if split.is_some() {
            options.partitions
        } else {
            1
        };
        let metrics = Arc::new(QueryMetrics::with_partitions(n));
        // the watermark is generated on the source thread (where idleness is seen)
        let lead = plan
            .nodes
            .iter()
            .take_while(|n| matches!(n, PhysicalNode::Watermark { .. }))
            .count();
        let (mut prefix, router) = match split {
            Some(at) => {
                let keys = match &plan.nodes[at] {
                    PhysicalNode::Exchange { keys } => keys.clone(),
                    _ => Vec::new(),
                };
                (
                    Pipeline::build_nodes(&plan.nodes[..at], 0, &metrics, None)?,
                    Some(Router::new(&keys, n)?),
                )
            }
            None => (
                Pipeline::build_nodes(&plan.nodes[..lead], 0, &metrics, None)?,
                None,
            ),
        };
        let first = split.unwrap_or(lead);
        // with several workers, the nodes after a gather run once, on the sink thread
        let gather = plan
            .nodes
            .iter()
            .position(|n| matches!(n, PhysicalNode::Gather))
            .filter(|_| n > 1);
        let worker_end = gather.unwrap_or(plan.nodes.len());
        let post = match gather {
            Some(g) => Pipeline::build_nodes(&plan.nodes[g + 1..], g + 1, &metrics, None)?,
            None => Pipeline::build_nodes(&[], plan.nodes.len(), &metrics, None)?,
        };
        let shutdown = ctx.shutdown.clone();
        let failure = Failure {
            error: Arc::default(),
            shutdown: shutdown.clone(),
        };
        let (out_tx, out_rx) = bounded::<SinkMsg>(options.channel_capacity);
        let mut workers = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n + 2);
        for p in 0..n {
            let pipeline =
                Pipeline::build_nodes(&plan.nodes[first..worker_end], first, &metrics, Some(p))?;
            let (tx, rx) = bounded::<WorkMsg>(options.channel_capacity);
            workers.push(tx);
            let out = out_tx.clone();
            let m = QueryMetrics::partition(&metrics, p);
            let latency = options.batch_latency.clone();
            let f = failure.clone();
            let name = if n == 1 {
                "eddy-worker".to_string()
            } else {
                format!("eddy-worker-{p}")
            };
            threads.push(spawn(&name, move || {
                if let Err(e) = run_worker(p, rx, pipeline, out, m, latency) {
                    f.fail(e);
                }
            })?);
        }
        let idle = plan.nodes.iter().find_map(|n| match n {
            PhysicalNode::Watermark {
                idle_timeout_ms, ..
            } => idle_timeout_ms.map(IdleClock::new),
            _ => None,
        });
        prefix.set_source_partitions(&source.partitions());
        let (ack_tx, ack_rx) = crossbeam_channel::unbounded::<Ack>();
        let checkpoints = source.checkpoint_interval().map(|interval| Checkpoints {
            interval,
            last: Instant::now(),
            acks: ack_rx,
        });
        let stage = SourceStage {
            source,
            prefix,
            router,
            workers,
            sink: out_tx,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            idle,
            checkpoints,
        };
        let f = failure.clone();
        threads.insert(
            0,
            spawn("eddy-source", move || {
                if let Err(e) = stage.run() {
                    f.fail(e);
                }
            })?,
        );

        let sink_metrics = metrics.clone();
        let finished: Arc<Mutex<Option<Instant>>> = Arc::default();
        let sink_finished = finished.clone();
        let f = failure.clone();
        let stage = SinkStage {
            sink,
            dead: dead_letters,
            post,
            metrics: sink_metrics,
            acks: ack_tx,
            workers: n,
        };
        threads.push(spawn("eddy-sink", move || {
            let result = stage.run(&out_rx);
            if let Err(e) = result {
                f.fail(e);
            }
            if let Ok(mut fin) = sink_finished.lock() {
                *fin = Some(Instant::now());
            }
        })?);

        Ok(Self {
            shutdown,
            counters: ctx.counters.clone(),
            metrics,
            error: failure.error,
            threads,
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
            late_dropped: m.total(|m| &m.late_rows),
            late_accepted: m.total(|m| &m.late_accepted),
            dead_letters: m.total(|m| &m.dead_letters),
            null_time_dropped: m.total(|m| &m.null_time_rows),
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
