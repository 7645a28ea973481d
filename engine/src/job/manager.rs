//! The [`JobManager`] keeps the jobs of a process; a [`JobHandle`] is one
//! job: its status, progress, stop, wait and live subscriptions.
//!
//! Each job has a supervisor thread that waits for its stage threads, sends
//! subscribers a progress event about twice a second, and records how the
//! job ended (finished, stopped, or failed with the first error any stage
//! hit, which also stops the other stages).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};

use crate::connectors::SourceCounters;
use crate::error::{EngineError, ExecError};
use crate::exec::metrics::QueryMetrics;
use crate::job::launch::{Launched, OnExit, Signals, launch};
use crate::job::{JobEvent, JobSpec, JobStatus, Progress, QueryStats};

/// A job's number, unique within its manager.
pub type JobId = u64;

/// How often subscribers hear about progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The jobs of a process: submit, list, stop, wait.
#[derive(Default)]
pub struct JobManager {
    jobs: Mutex<Vec<JobHandle>>,
    next_id: AtomicU64,
}

/// One line of [`JobManager::list`].
#[derive(Debug, Clone)]
pub struct JobInfo {
    /// The job's number.
    pub id: JobId,
    /// Its name.
    pub name: String,
    /// Where it is in its life.
    pub status: JobStatus,
    /// Its progress.
    pub progress: Progress,
}

impl JobManager {
    /// A manager with no jobs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a job.
    ///
    /// # Errors
    /// Its source or sinks cannot be opened or its operators cannot be
    /// built; nothing is left running.
    pub fn submit(&self, spec: JobSpec) -> Result<JobHandle, EngineError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let handle = JobHandle::start(id, spec)?;
        lock(&self.jobs).push(handle.clone());
        Ok(handle)
    }

    /// The job numbered `id`.
    pub fn get(&self, id: JobId) -> Option<JobHandle> {
        lock(&self.jobs).iter().find(|j| j.id() == id).cloned()
    }

    /// Every job, in the order submitted.
    pub fn jobs(&self) -> Vec<JobHandle> {
        lock(&self.jobs).clone()
    }

    /// Every job's number, name, status and progress.
    pub fn list(&self) -> Vec<JobInfo> {
        self.jobs().iter().map(JobHandle::info).collect()
    }

    /// Asks job `id` to stop; `false` if there is no such job.
    pub fn stop(&self, id: JobId) -> bool {
        self.get(id).map(|j| j.stop()).is_some()
    }

    /// Asks every job to stop.
    pub fn stop_all(&self) {
        self.jobs().iter().for_each(JobHandle::stop);
    }

    /// Waits up to `timeout` for every job to end; whether they all have.
    pub fn wait_all(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.jobs().iter().all(|j| {
            j.wait_until(deadline);
            j.status().is_terminal()
        })
    }

    /// Forgets an ended job; `None` if there is no such job or it still runs.
    pub fn remove(&self, id: JobId) -> Option<JobHandle> {
        let mut jobs = lock(&self.jobs);
        let at = jobs
            .iter()
            .position(|j| j.id() == id && j.status().is_terminal())?;
        Some(jobs.remove(at))
    }
}

/// A running or ended job; cheap to clone and share between threads.
#[derive(Clone)]
pub struct JobHandle(Arc<Job>);

struct Job {
    id: JobId,
    name: String,
    started: Instant,
    shutdown: Arc<AtomicBool>,
    /// Set by [`JobHandle::stop`] before `shutdown`: the stages wind down
    /// because they were asked to, not because one failed.
    stopping: Arc<AtomicBool>,
    metrics: Arc<QueryMetrics>,
    counters: Arc<SourceCounters>,
    state: Mutex<State>,
    changed: Condvar,
    subscribers: Arc<Subscribers>,
}

struct State {
    status: JobStatus,
    /// The first error, until a waiter takes it.
    error: Option<ExecError>,
    stop_requested: bool,
    ended: Option<Instant>,
}

/// What the stage threads report as they end.
struct Exits {
    error: Mutex<Option<ExecError>>,
    shutdown: Arc<AtomicBool>,
    done: Sender<()>,
}

impl JobHandle {
    fn start(id: JobId, spec: JobSpec) -> Result<Self, EngineError> {
        let name = spec.name.clone();
        let shutdown = Arc::new(AtomicBool::new(false));
        let subscribers = Arc::new(Subscribers::default());
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let exits = Arc::new(Exits {
            error: Mutex::new(None),
            shutdown: shutdown.clone(),
            done: done_tx,
        });
        let reporter = exits.clone();
        let on_exit: OnExit = Arc::new(move |error| {
            if let Some(e) = error {
                lock(&reporter.error).get_or_insert(e);
                // one stage failed: the others stop
                reporter.shutdown.store(true, Ordering::SeqCst);
            }
            let _ = reporter.done.send(());
        });
        let started = Instant::now();
        let stopping = Arc::new(AtomicBool::new(false));
        let signals = Signals {
            shutdown: shutdown.clone(),
            stopping: stopping.clone(),
        };
        let launched = match launch(spec, signals, subscribers.clone(), on_exit) {
            Ok(l) => l,
            Err(e) => {
                // stages already started wind down
                shutdown.store(true, Ordering::SeqCst);
                return Err(e);
            }
        };
        let Launched {
            threads,
            metrics,
            counters,
        } = launched;
        let job = Arc::new(Job {
            id,
            name: name.clone(),
            started,
            shutdown,
            stopping,
            metrics,
            counters,
            state: Mutex::new(State {
                status: JobStatus::Running,
                error: None,
                stop_requested: false,
                ended: None,
            }),
            changed: Condvar::new(),
            subscribers,
        });
        let handle = Self(job);
        let supervised = handle.clone();
        std::thread::Builder::new()
            .name(format!("eddy-job-{id}"))
            .spawn(move || supervised.supervise(threads, &done_rx, &exits))
            .map_err(|e| ExecError::Worker(format!("job {name}"), e.to_string()))?;
        Ok(handle)
    }

    /// Waits for the stage threads; records how the job ended.
    fn supervise(
        &self,
        threads: Vec<std::thread::JoinHandle<()>>,
        done: &Receiver<()>,
        exits: &Exits,
    ) {
        let mut running = threads.len();
        while running > 0 {
            match done.recv_timeout(PROGRESS_EVERY) {
                Ok(()) => running -= 1,
                Err(RecvTimeoutError::Timeout) => self
                    .0
                    .subscribers
                    .event(JobEvent::Progress(self.progress())),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let ended = Instant::now();
        for t in threads {
            // a stage's panic was caught and reported as its error
            let _ = t.join();
        }
        let error = lock(&exits.error).take();
        let mut state = lock(&self.0.state);
        state.status = match &error {
            Some(e) => JobStatus::Failed(e.to_string()),
            None if state.stop_requested => JobStatus::Stopped,
            None => JobStatus::Finished,
        };
        state.error = error;
        state.ended = Some(ended);
        let status = state.status.clone();
        drop(state);
        self.0.changed.notify_all();
        self.0
            .subscribers
            .event(JobEvent::Progress(self.progress()));
        self.0.subscribers.close(JobEvent::Status(status));
    }

    /// The job's number.
    pub fn id(&self) -> JobId {
        self.0.id
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Where the job is in its life.
    pub fn status(&self) -> JobStatus {
        lock(&self.0.state).status.clone()
    }

    /// Number, name, status and progress.
    pub fn info(&self) -> JobInfo {
        JobInfo {
            id: self.id(),
            name: self.0.name.clone(),
            status: self.status(),
            progress: self.progress(),
        }
    }

    /// Asks the job to stop (as Ctrl-C does): the source stops reading,
    /// rows already read are written, windows still open are not emitted.
    pub fn stop(&self) {
        let mut state = lock(&self.0.state);
        if !state.status.is_terminal() {
            state.stop_requested = true;
            state.status = JobStatus::Stopping;
            drop(state);
            self.0.changed.notify_all();
            self.0
                .subscribers
                .event(JobEvent::Status(JobStatus::Stopping));
        }
        self.0.stopping.store(true, Ordering::SeqCst);
        self.0.shutdown.store(true, Ordering::SeqCst);
    }

    /// Progress so far.
    pub fn progress(&self) -> Progress {
        let m = &self.0.metrics;
        let end = lock(&self.0.state).ended.unwrap_or_else(Instant::now);
        Progress {
            checkpoints: m.checkpoint_stats(),
            records_in: self.0.counters.records.load(Ordering::Relaxed),
            records_out: m.rows_out.load(Ordering::Relaxed),
            malformed: self.0.counters.malformed.load(Ordering::Relaxed),
            late_dropped: m.total(|m| &m.late_rows),
            watermark: m.watermark(),
            elapsed: end.duration_since(self.0.started),
        }
    }

    /// The job's live counters (for the metrics exporter).
    pub fn metrics(&self) -> &Arc<QueryMetrics> {
        &self.0.metrics
    }

    /// The source's live counters (rows read, malformed records).
    pub fn source_counters(&self) -> &Arc<SourceCounters> {
        &self.0.counters
    }

    /// Live rows, progress and status changes, through a queue of
    /// `capacity` events. A subscriber that falls behind never slows the
    /// job: rows that find its queue full are counted
    /// ([`Subscription::skipped_rows`]) instead. The queue closes when the
    /// job ends, after a last progress and status event (if there is room).
    pub fn subscribe(&self, capacity: usize) -> Subscription {
        let (tx, rx) = bounded(capacity.max(1));
        let skipped = Arc::new(AtomicU64::new(0));
        if self.status().is_terminal() {
            let _ = tx.try_send(JobEvent::Status(self.status()));
        } else {
            self.0.subscribers.add(tx, skipped.clone());
        }
        Subscription {
            events: rx,
            skipped,
            job: self.clone(),
        }
    }

    /// Whether the job has ended.
    pub fn is_finished(&self) -> bool {
        self.status().is_terminal()
    }

    /// Waits for the job to end, up to `timeout`; whether it has.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Instant::now() + timeout);
        self.is_finished()
    }

    fn wait_until(&self, deadline: Instant) {
        let mut state = lock(&self.0.state);
        while !state.status.is_terminal() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = match self.0.changed.wait_timeout(state, left) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Waits for the job to end and returns what it did.
    ///
    /// # Errors
    /// The first error any stage hit (the error itself to the first caller,
    /// its text to later ones).
    pub fn wait(&self) -> Result<QueryStats, ExecError> {
        let mut state = lock(&self.0.state);
        while !state.status.is_terminal() {
            state = match self.0.changed.wait(state) {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
        if let JobStatus::Failed(message) = state.status.clone() {
            return Err(state.error.take().unwrap_or(ExecError::Failed(message)));
        }
        drop(state);
        let p = self.progress();
        let m = &self.0.metrics;
        Ok(QueryStats {
            checkpoints: p.checkpoints.clone(),
            records_in: p.records_in,
            records_out: p.records_out,
            malformed: p.malformed,
            late_dropped: p.late_dropped,
            late_accepted: m.total(|m| &m.late_accepted),
            dead_letters: m.total(|m| &m.dead_letters),
            null_time_dropped: m.total(|m| &m.null_time_rows),
            watermark: p.watermark,
            elapsed: p.elapsed,
        })
    }
}

/// A live view of one job (see [`JobHandle::subscribe`]).
pub struct Subscription {
    /// The events; disconnected once the job has ended.
    pub events: Receiver<JobEvent>,
    skipped: Arc<AtomicU64>,
    job: JobHandle,
}

impl Subscription {
    /// Rows that were not delivered because the queue was full.
    pub fn skipped_rows(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// The job watched.
    pub fn job(&self) -> &JobHandle {
        &self.job
    }
}

/// A job's subscribers, fed by the sink stage and the supervisor.
#[derive(Default)]
pub(crate) struct Subscribers {
    list: Mutex<Vec<(Sender<JobEvent>, Arc<AtomicU64>)>>,
    count: AtomicUsize,
}

impl Subscribers {
    fn add(&self, tx: Sender<JobEvent>, skipped: Arc<AtomicU64>) {
        let mut list = lock(&self.list);
        list.push((tx, skipped));
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Offers rows to every subscriber without waiting.
    pub fn rows(&self, batch: &RecordBatch) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut list = lock(&self.list);
        list.retain(
            |(tx, skipped)| match tx.try_send(JobEvent::Rows(batch.clone())) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    skipped.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            },
        );
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Offers an event to every subscriber without waiting.
    fn event(&self, event: JobEvent) {
        let mut list = lock(&self.list);
        list.retain(|(tx, _)| {
            !matches!(
                tx.try_send(event.clone()),
                Err(TrySendError::Disconnected(_))
            )
        });
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// A last event, then the subscriptions close.
    fn close(&self, last: JobEvent) {
        let mut list = lock(&self.list);
        for (tx, _) in list.iter() {
            let _ = tx.send_timeout(last.clone(), Duration::from_millis(100));
        }
        list.clear();
        self.count.store(0, Ordering::Relaxed);
    }
}

/// Locks a mutex, taking the data of a poisoned one (a panicked stage is
/// reported as its error; the data it guarded stays usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;
