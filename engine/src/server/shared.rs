//! Queries a server runs as one instance of several (`eddy serve
//! --instance-id K`, docs/scale-out.md): every server of the fleet is given
//! the same query under the same name, and each runs the tasks its share
//! of the consumer groups assigns it. The API shows which tasks this server
//! runs, the rebalances and their duration; /metrics exports them.

use std::sync::Arc;

use serde_json::json;
use warp::http::StatusCode;

use crate::exec::export::{Exporter, Share};
use crate::job::instance::{Instance, InstanceSpec, all_finished};
use crate::job::share::instance_spec;
use crate::server::error::ApiError;
use crate::{PhysicalPlan, RunOptions};

/// This server's share of a query.
pub(super) struct SharedQuery {
    instance: Instance,
    spec: InstanceSpec,
    sources: Vec<(String, i32)>,
    share: Arc<dyn Share>,
    /// Every task of the query has finished (a bounded input).
    pub finished: bool,
}

impl SharedQuery {
    /// Joins query `name`'s groups as instance `id` and registers its
    /// metrics.
    ///
    /// # Errors
    /// 400: the query cannot be shared (the message says why) or its
    /// broker cannot be reached.
    pub fn start(
        plan: &PhysicalPlan,
        (name, id): (&str, &str),
        options: RunOptions,
        exporter: &Exporter,
    ) -> Result<Self, ApiError> {
        let refused = |e: crate::EngineError| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("query '{name}' cannot start as instance '{id}' of several: {e}"),
            )
            .hint("this server runs every query as its share of a fleet (--instance-id): read a Kafka topic and write one (or a bare SELECT)")
        };
        if matches!(plan.sink, crate::plan::logical::SinkTarget::Stdout) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("query '{name}' is a bare SELECT, and no one server of a fleet sees all of its rows"),
            )
            .hint("write its results to a Kafka stream: INSERT INTO <stream> SELECT ..."));
        }
        let (spec, sources) = instance_spec(plan, (name, id), options).map_err(refused)?;
        let instance = Instance::start(spec.clone()).map_err(refused)?;
        let share = instance.share();
        exporter.unregister_share(name);
        exporter.register_share(share.clone());
        Ok(Self {
            instance,
            spec,
            sources,
            share,
            finished: false,
        })
    }

    /// Whether it still runs; once it ended, why it failed (if it did).
    pub fn poll(&mut self) -> Result<bool, String> {
        if self.finished {
            return Ok(false);
        }
        let done = all_finished(&self.spec, &self.sources).unwrap_or(false);
        if done || !self.instance.is_running() {
            self.finished = done;
            self.stop()?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Stops: its tasks checkpoint and commit, then it leaves the groups.
    pub fn stop(&mut self) -> Result<(), String> {
        self.instance.stop();
        self.instance.wait().map_err(|e| e.to_string())
    }

    /// What the API shows of it.
    pub fn json(&self) -> serde_json::Value {
        let s = self.share.status();
        let tasks: Vec<_> = s
            .tasks
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "stage": t.stage,
                    "records_in": t.source.records.load(std::sync::atomic::Ordering::Relaxed),
                    "records_out": t.metrics.rows_out.load(std::sync::atomic::Ordering::Relaxed),
                })
            })
            .collect();
        json!({
            "id": s.instance,
            "repartition_topic": self.spec.stages.hop.then(|| self.spec.topic.name.clone()),
            "tasks": tasks,
            "rebalances": s.rebalances,
            "last_rebalance_ms": s.last_rebalance.map(|d| d.as_millis() as u64),
        })
    }
}
