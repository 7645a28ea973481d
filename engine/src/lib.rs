//! Eddy: a streaming SQL engine over Apache Arrow record batches.
//!
//! SQL text is parsed and planned ([`sql`], [`plan`]) and run by push-based
//! operators ([`exec`]) on worker threads, reading from and writing to
//! [`connectors`]. The [`job`] layer runs a plan: submit a [`JobSpec`] to a
//! [`JobManager`] and follow it through its [`JobHandle`].
//!
//! ```no_run
//! let script = eddy::plan_script(
//!     "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
//!        WITH (connector = 'nexmark', stream = 'bid', events = '100000');
//!      SELECT auction, window_start, COUNT(*) AS bids
//!      FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
//!      GROUP BY auction, window_start, window_end;",
//! )?;
//! let (batches, stats) = eddy::collect(&script.queries[0], &eddy::RunOptions::default())?;
//! # Ok::<(), eddy::EngineError>(())
//! ```

pub mod agg;
pub mod catalog;
pub mod checkpoint;
pub mod connectors;
pub mod error;
pub mod exec;
pub mod job;
pub mod plan;
pub mod server;
pub mod sql;
pub mod types;
pub mod udf;

#[cfg(test)]
mod fuzz;

use std::sync::{Arc, Mutex};

use arrow::record_batch::RecordBatch;

pub use error::{ConnectorError, EngineError, ExecError, PlanError};
pub use job::{
    CheckpointConfig, DEFAULT_CHECKPOINT_INTERVAL, JobHandle, JobManager, JobSpec, JobStatus,
    Progress, QueryStats, RunOptions, default_state_limit,
};
pub use plan::physical::PhysicalPlan;
pub use sql::{Catalog, PlannedStatement};

use connectors::Sink;
use connectors::dead_letter::CollectDeadLetters;

/// A planned script: its streams, the queries to run and the ones to explain.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Streams declared by the script.
    pub catalog: Catalog,
    /// Queries to run (SELECT and INSERT INTO), in order.
    pub queries: Vec<PhysicalPlan>,
    /// Queries under EXPLAIN, in order.
    pub explains: Vec<PhysicalPlan>,
    /// Per query (same order as `queries`): the checkpoint interval a
    /// `SET 'checkpoint.interval'` before it set, if any.
    pub checkpoint_intervals: Vec<Option<std::time::Duration>>,
}

/// Parses and plans a SQL script.
///
/// # Errors
/// The first statement that does not parse or plan, with its position and a hint.
pub fn plan_script(sql: &str) -> Result<Script, PlanError> {
    plan_script_with_udfs(sql, Vec::new())
}

/// Parses and plans a SQL script whose queries may call the functions of
/// the given WebAssembly modules (see [`udf::registry::Registry::modules`]).
///
/// # Errors
/// The first statement that does not parse or plan, with its position and a hint.
pub fn plan_script_with_udfs(
    sql: &str,
    udfs: Vec<Arc<udf::UdfModule>>,
) -> Result<Script, PlanError> {
    plan_script_or_catalog(sql, udfs).map_err(|(e, _)| *e)
}

/// [`plan_script_with_udfs`], giving back with an error the catalog of the
/// streams declared before the statement that failed (an editor still
/// completes their names and columns).
///
/// # Errors
/// The first statement that does not parse or plan, and that catalog.
pub fn plan_script_or_catalog(
    sql: &str,
    udfs: Vec<Arc<udf::UdfModule>>,
) -> Result<Script, (Box<PlanError>, Catalog)> {
    let mut script = Script {
        catalog: Catalog::with_udfs(udfs),
        ..Script::default()
    };
    let planned = match script.catalog.plan_script(sql) {
        Ok(p) => p,
        Err(e) => return Err((Box::new(e), script.catalog)),
    };
    let mut interval = None;
    for stmt in planned {
        match stmt {
            PlannedStatement::CreatedStream(_)
            | PlannedStatement::CreatedView(_)
            | PlannedStatement::Setting => {}
            PlannedStatement::CheckpointInterval(d) => interval = Some(d),
            PlannedStatement::Query(q) => {
                script.queries.push(PhysicalPlan::from_logical(&q));
                script.checkpoint_intervals.push(interval);
            }
            PlannedStatement::Explain(q) => script.explains.push(PhysicalPlan::from_logical(&q)),
        }
    }
    if let Err(e) = sql::paths::check(&script.queries) {
        return Err((Box::new(e), script.catalog));
    }
    Ok(script)
}

/// A sink that keeps every batch in memory, for embedding and tests.
#[derive(Debug, Clone, Default)]
pub struct CollectSink {
    batches: Arc<Mutex<Vec<RecordBatch>>>,
}

impl CollectSink {
    /// The batches written so far.
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.batches.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl Sink for CollectSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        if let Ok(mut b) = self.batches.lock() {
            b.push(batch.clone());
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

/// What [`collect_all`] gathered.
#[derive(Debug, Clone)]
pub struct Collected {
    /// Output batches in the order the sink received them.
    pub batches: Vec<RecordBatch>,
    /// Dead letters as JSON lines (see [`connectors::dead_letter`]).
    pub dead_letters: Vec<String>,
    /// The run's statistics.
    pub stats: QueryStats,
}

/// Runs a query to the end of its input (as a job of its own) and returns
/// its output batches and dead letters instead of writing them to its sinks.
///
/// # Errors
/// Any error while starting or running the query.
pub fn collect_all(plan: &PhysicalPlan, options: &RunOptions) -> Result<Collected, EngineError> {
    let sink = CollectSink::default();
    let dead = CollectDeadLetters::new(&plan.source.name);
    let spec = JobSpec::new("collect", plan.clone())
        .options(options.clone())
        .sink(Box::new(sink.clone()))
        .dead_letters(Box::new(dead.clone()));
    let stats = JobManager::new().submit(spec)?.wait()?;
    Ok(Collected {
        batches: sink.batches(),
        dead_letters: dead.lines(),
        stats,
    })
}

/// Runs a query to the end of its input and returns its output batches
/// instead of writing them to its sink.
///
/// # Errors
/// Any error while starting or running the query.
pub fn collect(
    plan: &PhysicalPlan,
    options: &RunOptions,
) -> Result<(Vec<RecordBatch>, QueryStats), EngineError> {
    let c = collect_all(plan, options)?;
    Ok((c.batches, c.stats))
}
