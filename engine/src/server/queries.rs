//! The server's queries: each a SQL script with one query, run as a job,
//! recorded in `<data-dir>/queries.json` so a restarted server lists them
//! again and restarts the ones that were running (at-least-once: their
//! sources resume where they committed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;

use crate::connectors::Sink;
use crate::exec::export::Exporter;
use crate::job::Subscription;
use crate::plan::logical::SinkTarget;
use crate::server::error::ApiError;
use crate::server::shared::SharedQuery;
use crate::server::views::{checkpoints_json, live_json, progress_json};
use crate::udf::UdfModule;
use crate::{ConnectorError, JobHandle, JobManager, JobSpec, JobStatus, RunOptions};

/// What is kept of a query across restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryRecord {
    /// Its name (unique on the server).
    pub name: String,
    /// The script: CREATE STREAM statements and one query.
    pub sql: String,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
    /// When it was last started.
    pub started_ms: Option<i64>,
    /// Whether it should be running (a restart starts it again).
    pub running: bool,
    /// Why it last failed, if it did.
    pub error: Option<String>,
}

struct Entry {
    record: QueryRecord,
    job: Option<JobHandle>,
    /// Run as this server's share of a fleet (`--instance-id`).
    shared: Option<SharedQuery>,
}

/// The queries of one server.
pub struct Queries {
    file: PathBuf,
    manager: JobManager,
    exporter: Arc<Exporter>,
    entries: Mutex<BTreeMap<String, Entry>>,
    max_running: usize,
    partitions: usize,
    /// Durable checkpoints of every query, each under its name.
    checkpoint: Option<crate::CheckpointConfig>,
    /// Every query runs as this instance of several (`--instance-id`).
    instance: Option<String>,
}

/// Rows of a bare `SELECT` go to the query's subscribers only.
struct Discard;

impl Sink for Discard {
    fn write(&mut self, _batch: &RecordBatch) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Plans `sql`, which must hold exactly one query.
///
/// # Errors
/// 400: SQL that does not plan, or that holds no query or several.
pub fn plan_one(sql: &str, udfs: &[Arc<UdfModule>]) -> Result<crate::PhysicalPlan, ApiError> {
    plan_with_interval(sql, udfs).map(|(plan, _)| plan)
}

/// [`plan_one`], with the checkpoint interval the script SETs, if any.
fn plan_with_interval(
    sql: &str,
    udfs: &[Arc<UdfModule>],
) -> Result<(crate::PhysicalPlan, Option<std::time::Duration>), ApiError> {
    let script = crate::plan_script_with_udfs(sql, udfs.to_vec()).map_err(|e| ApiError::sql(&e))?;
    match script.queries.as_slice() {
        [one] => Ok((one.clone(), script.checkpoint_intervals[0])),
        [] => Err(
            ApiError::new(StatusCode::BAD_REQUEST, "the script has no query to run")
                .hint("end it with SELECT ... or INSERT INTO ... SELECT ..."),
        ),
        many => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the script has {} queries; a server query runs one",
                many.len()
            ),
        )
        .hint("create one query per script")),
    }
}

/// Checks a query name: 1 to 64 letters, digits, `-` or `_`.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("'{name}' is not a valid query name"),
        )
        .hint("use 1 to 64 letters, digits, '-' or '_'"))
    }
}

impl Queries {
    /// The queries recorded in `data_dir` (none yet: an empty list).
    ///
    /// # Errors
    /// A record file that cannot be read or parsed.
    pub fn open(
        data_dir: &Path,
        exporter: Arc<Exporter>,
        max_running: usize,
        partitions: usize,
        (checkpoint, instance): (Option<crate::CheckpointConfig>, Option<String>),
    ) -> std::io::Result<Self> {
        let file = data_dir.join("queries.json");
        let records: Vec<QueryRecord> = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", file.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let entries = records
            .into_iter()
            .map(|r| {
                (
                    r.name.clone(),
                    Entry {
                        record: r,
                        job: None,
                        shared: None,
                    },
                )
            })
            .collect();
        Ok(Self {
            file,
            manager: JobManager::new(),
            exporter,
            entries: Mutex::new(entries),
            max_running: max_running.max(1),
            partitions: partitions.max(1),
            checkpoint,
            instance,
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts again the queries recorded as running; returns the names of
    /// those that could not start (with their error recorded).
    pub fn restart(&self, udfs: &[Arc<UdfModule>]) -> Vec<String> {
        let mut failed = Vec::new();
        let mut entries = self.lock();
        for e in entries.values_mut().filter(|e| e.record.running) {
            if let Err(err) = self.start_entry(e, udfs, false) {
                e.record.running = false;
                e.record.error = Some(err.error.clone());
                failed.push(e.record.name.clone());
            }
        }
        self.save(&entries);
        failed
    }

    /// Creates and starts a query.
    ///
    /// # Errors
    /// 400 bad name or SQL, 409 a query of that name exists, 429 too many
    /// queries running.
    pub fn create(
        &self,
        name: &str,
        sql: &str,
        udfs: &[Arc<UdfModule>],
    ) -> Result<serde_json::Value, ApiError> {
        check_name(name)?;
        plan_one(sql, udfs)?;
        let mut entries = self.lock();
        self.refresh(&mut entries);
        if entries.contains_key(name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("a query named '{name}' exists"),
            )
            .hint("choose another name, or delete that query first"));
        }
        let running = entries.values().filter(|e| e.record.running).count();
        if running >= self.max_running {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{running} queries are running, the most this server runs at once"),
            )
            .hint("stop one, or start the server with a higher --max-queries"));
        }
        let mut entry = Entry {
            record: QueryRecord {
                name: name.to_string(),
                sql: sql.to_string(),
                created_ms: now_ms(),
                started_ms: None,
                running: true,
                error: None,
            },
            job: None,
            shared: None,
        };
        // a new query: checkpoints left under its name are not its own
        self.start_entry(&mut entry, udfs, true)?;
        let view = view(&entry);
        entries.insert(name.to_string(), entry);
        self.save(&entries);
        Ok(view)
    }

    /// Starts a query's job: from its latest checkpoint unless `fresh` (or
    /// it had finished: then from the beginning).
    fn start_entry(
        &self,
        e: &mut Entry,
        udfs: &[Arc<UdfModule>],
        fresh: bool,
    ) -> Result<(), ApiError> {
        let (plan, interval) = plan_with_interval(&e.record.sql, udfs)?;
        let name = e.record.name.clone();
        if let Some(id) = &self.instance {
            // its tasks' checkpoints are the fleet's: never from scratch
            let options = RunOptions {
                partitions: self.partitions,
                checkpoint: self.checkpoint.clone().map(|c| crate::CheckpointConfig {
                    interval: interval.unwrap_or(c.interval),
                    ..c
                }),
                ..RunOptions::default()
            };
            if let Some(mut old) = e.shared.take() {
                let _ = old.stop();
            }
            e.shared = Some(SharedQuery::start(
                &plan,
                (&name, id),
                options,
                &self.exporter,
            )?);
            e.record.started_ms = Some(now_ms());
            e.record.running = true;
            e.record.error = None;
            return Ok(());
        }
        let spec = |from_scratch: bool| {
            let options = RunOptions {
                partitions: self.partitions,
                batch_latency: Some(self.exporter.batch_latency(&name)),
                checkpoint: self.checkpoint.clone().map(|c| crate::CheckpointConfig {
                    name: Some(name.clone()),
                    from_scratch,
                    // the query's own SET 'checkpoint.interval' wins
                    interval: interval.unwrap_or(c.interval),
                    ..c
                }),
                ..RunOptions::default()
            };
            let stdout = matches!(plan.sink, SinkTarget::Stdout);
            let spec = JobSpec::new(name.clone(), plan.clone()).options(options);
            if stdout {
                spec.sink(Box::new(Discard))
            } else {
                spec
            }
        };
        let submitted = match self.manager.submit(spec(fresh)) {
            Err(crate::EngineError::Exec(crate::ExecError::Checkpoint(
                crate::checkpoint::CheckpointError::Finished(_),
            ))) => self.manager.submit(spec(true)),
            other => other,
        };
        let job = submitted.map_err(|err| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("query '{name}' cannot start: {err}"),
            )
            .hint("check the streams' options (paths, brokers) and try again")
        })?;
        self.exporter.unregister(&name);
        self.exporter
            .register(&name, job.metrics().clone(), job.source_counters().clone());
        e.record.started_ms = Some(now_ms());
        e.record.running = true;
        e.record.error = None;
        e.job = Some(job);
        Ok(())
    }

    /// Folds ended jobs into their records.
    fn refresh(&self, entries: &mut BTreeMap<String, Entry>) {
        let mut changed = false;
        for e in entries.values_mut() {
            if let Some(s) = &mut e.shared
                && e.record.running
            {
                match s.poll() {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(msg) => e.record.error = Some(msg),
                }
                e.record.running = false;
                changed = true;
            }
            if let Some(job) = &e.job
                && e.record.running
                && job.status().is_terminal()
            {
                e.record.running = false;
                if let JobStatus::Failed(msg) = job.status() {
                    e.record.error = Some(msg);
                }
                changed = true;
            }
        }
        if changed {
            self.save(entries);
        }
    }

    /// Every query, by name.
    pub fn list(&self) -> Vec<serde_json::Value> {
        let mut entries = self.lock();
        self.refresh(&mut entries);
        entries.values().map(view).collect()
    }

    /// One query.
    ///
    /// # Errors
    /// 404.
    pub fn get(&self, name: &str) -> Result<serde_json::Value, ApiError> {
        let mut entries = self.lock();
        self.refresh(&mut entries);
        let e = entries
            .get(name)
            .ok_or_else(|| ApiError::not_found("query", name))?;
        let mut v = view(e);
        v["sql"] = e.record.sql.clone().into();
        Ok(v)
    }

    /// The job of a query, if it has run in this process.
    ///
    /// # Errors
    /// 404.
    pub fn job(&self, name: &str) -> Result<Option<JobHandle>, ApiError> {
        let entries = self.lock();
        let e = entries
            .get(name)
            .ok_or_else(|| ApiError::not_found("query", name))?;
        Ok(e.job.clone())
    }

    /// A live view of a running query.
    ///
    /// # Errors
    /// 404; 409 when it is not running.
    pub fn subscribe(&self, name: &str, capacity: usize) -> Result<Subscription, ApiError> {
        if self.instance.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("query '{name}' runs as this server's share of a fleet: no one server sees all of its rows"),
            )
            .hint("read its output topic"));
        }
        match self.job(name)? {
            Some(job) if !job.status().is_terminal() => Ok(job.subscribe(capacity)),
            _ => Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("query '{name}' is not running"),
            )
            .hint(format!("start it again: POST /api/queries/{name}/start"))),
        }
    }

    /// Stops a query (its sinks flushed); it stays listed.
    ///
    /// # Errors
    /// 404.
    pub fn stop(&self, name: &str) -> Result<serde_json::Value, ApiError> {
        let job = {
            let mut entries = self.lock();
            let e = entries
                .get_mut(name)
                .ok_or_else(|| ApiError::not_found("query", name))?;
            e.record.running = false;
            if let Some(mut shared) = e.shared.take() {
                // its tasks checkpoint and commit; the others take them over
                if let Err(msg) = shared.stop() {
                    e.record.error = Some(msg);
                }
                self.exporter.unregister_share(name);
            }
            let job = e.job.clone();
            self.save(&entries);
            job
        };
        if let Some(job) = job {
            job.stop();
            job.wait_timeout(std::time::Duration::from_secs(30));
        }
        self.get(name)
    }

    /// Starts a stopped, finished or failed query again.
    ///
    /// # Errors
    /// 404; 409 when it is running; 400 when it no longer plans.
    pub fn start(
        &self,
        name: &str,
        udfs: &[Arc<UdfModule>],
    ) -> Result<serde_json::Value, ApiError> {
        let mut entries = self.lock();
        self.refresh(&mut entries);
        let running = entries.values().filter(|e| e.record.running).count();
        let e = entries
            .get_mut(name)
            .ok_or_else(|| ApiError::not_found("query", name))?;
        if e.record.running {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("query '{name}' is running"),
            ));
        }
        if running >= self.max_running {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{running} queries are running, the most this server runs at once"),
            ));
        }
        // resumed from its last checkpoint, if it takes them
        self.start_entry(e, udfs, false)?;
        let v = view(e);
        self.save(&entries);
        Ok(v)
    }

    /// Stops and forgets a query.
    ///
    /// # Errors
    /// 404.
    pub fn delete(&self, name: &str) -> Result<(), ApiError> {
        let entry = {
            let mut entries = self.lock();
            let e = entries
                .remove(name)
                .ok_or_else(|| ApiError::not_found("query", name))?;
            self.save(&entries);
            e
        };
        if let Some(job) = entry.job {
            job.stop();
            job.wait_timeout(std::time::Duration::from_secs(30));
            self.manager.remove(job.id());
        }
        if let Some(mut shared) = entry.shared {
            let _ = shared.stop();
            self.exporter.unregister_share(name);
        }
        self.exporter.unregister(name);
        // its checkpoints go with it
        if let Some(c) = &self.checkpoint {
            let cleared = crate::checkpoint::store::CheckpointStore::open(&c.location, name)
                .and_then(|store| store.clear());
            if let Err(e) = cleared {
                eprintln!("eddy serve: cannot delete the checkpoints of query '{name}': {e}");
            }
        }
        Ok(())
    }

    /// Stops every query (sinks flushed), keeping each one's `running` mark
    /// so a restarted server starts it again.
    pub fn shutdown(&self, timeout: std::time::Duration) -> bool {
        for e in self.lock().values_mut() {
            if let Some(mut shared) = e.shared.take() {
                let _ = shared.stop();
            }
        }
        self.manager.stop_all();
        self.manager.wait_all(timeout)
    }

    /// Writes the records, atomically (a temporary file renamed over it).
    fn save(&self, entries: &BTreeMap<String, Entry>) {
        let records: Vec<&QueryRecord> = entries.values().map(|e| &e.record).collect();
        let tmp = self.file.with_extension("json.tmp");
        let written = serde_json::to_vec_pretty(&records)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.file));
        if let Err(e) = written {
            eprintln!(
                "eddy serve: cannot record the queries in {}: {e}",
                self.file.display()
            );
        }
    }
}

/// A query as the API shows it.
fn view(e: &Entry) -> serde_json::Value {
    let r = &e.record;
    if let Some(s) = &e.shared {
        let status = match (r.running, s.finished, &r.error) {
            (true, _, _) => "running",
            (false, true, _) => "finished",
            (false, false, Some(_)) => "failed",
            (false, false, None) => "stopped",
        };
        return serde_json::json!({
            "name": r.name,
            "status": status,
            "error": r.error,
            "created_ms": r.created_ms,
            "started_ms": r.started_ms,
            "progress": null,
            "checkpoints": null,
            "instance": s.json(),
        });
    }
    let (status, progress) = match &e.job {
        Some(job) => {
            let p = job.progress();
            let status = job.status();
            let error = match &status {
                JobStatus::Failed(m) => Some(m.clone()),
                _ => r.error.clone(),
            };
            let mut progress = progress_json(&p);
            progress["live"] = live_json(&job.live());
            (
                serde_json::json!({ "status": status.name(), "error": error }),
                progress,
            )
        }
        None => (
            serde_json::json!({
                "status": if r.error.is_some() { "failed" } else { "stopped" },
                "error": r.error,
            }),
            serde_json::Value::Null,
        ),
    };
    serde_json::json!({
        "name": r.name,
        "status": status["status"],
        "error": status["error"],
        "created_ms": r.created_ms,
        "started_ms": r.started_ms,
        "progress": progress,
        "checkpoints": e.job.as_ref().map(|j| checkpoints_json(&j.progress().checkpoints)),
    })
}
