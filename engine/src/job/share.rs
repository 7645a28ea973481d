//! Setting up one process's share of a query run by several (`eddy run
//! --instance-id`, `eddy serve --instance-id`; docs/scale-out.md): the
//! checks that a query can be shared, its repartition topic (created with
//! as many partitions as the source unless it exists) and the
//! [`InstanceSpec`] the process runs.

use std::time::Duration;

use crate::error::{EngineError, PlanError};
use crate::job::RunOptions;
use crate::job::instance::InstanceSpec;
use crate::job::scale_out::{RepartitionTopic, Stages, ensure_topic, topic_name};
use crate::plan::logical::SinkTarget;
use crate::plan::physical::PhysicalPlan;

/// How long a member may be silent before its group moves its partitions.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks that several processes can share `plan`: a Kafka source (its
/// partitions are what they share) and a sink every process can write (a
/// Kafka topic, or each process's stdout).
///
/// # Errors
/// What cannot be shared, and what to do instead.
pub fn check_shareable(plan: &PhysicalPlan) -> Result<(), PlanError> {
    if plan.source.connector() != "kafka" {
        return Err(PlanError::unplaced(format!(
            "--instance-id shares a Kafka source's partitions between processes; stream '{}' is read by connector '{}'",
            plan.source.name,
            plan.source.connector()
        )));
    }
    if let SinkTarget::Stream(def) = &plan.sink
        && !matches!(def.connector(), "kafka" | "upsert-kafka")
    {
        return Err(PlanError::unplaced(format!(
            "each process writes its own share of the results: stream '{}' (connector '{}') cannot be shared by several processes; write to a Kafka topic",
            def.name,
            def.connector()
        )));
    }
    Ok(())
}

/// Query `query` (`plan`) split at its exchange, its repartition topic
/// having `partitions` partitions (0: not known yet, as before the first
/// instance has looked at the source).
///
/// # Errors
/// A plan without an exchange, or a co-partitioning declaration the
/// query does not match.
pub fn stages_of(plan: &PhysicalPlan, query: &str, partitions: i32) -> Result<Stages, PlanError> {
    Stages::split(plan, &stages_topic(query, partitions))
}

fn stages_topic(query: &str, partitions: i32) -> RepartitionTopic {
    RepartitionTopic {
        name: topic_name(query),
        partitions,
    }
}

/// Instance `instance` of query `query` (`plan`), its repartition topic
/// made ready (unless the source is co-partitioned); also the source's
/// partitions.
///
/// # Errors
/// A query that cannot be shared, a broker that cannot be reached, or a
/// topic that cannot be created.
pub fn instance_spec(
    plan: &PhysicalPlan,
    (query, instance): (&str, &str),
    options: RunOptions,
) -> Result<(InstanceSpec, Vec<(String, i32)>), EngineError> {
    check_shareable(plan)?;
    let stages = stages_of(plan, query, 0)?;
    let config = stages.cluster_config();
    let sources = stages.source_partitions()?;
    // co-partitioned: no repartition topic to create
    let partitions = match stages.hop {
        true => ensure_topic(&config, &topic_name(query), sources.len() as i32)?,
        false => 0,
    };
    let stages = stages_of(plan, query, partitions)?;
    let topic = stages_topic(query, partitions);
    let spec = InstanceSpec {
        query: query.to_string(),
        instance: instance.to_string(),
        stages,
        topic,
        config,
        options,
        sink: None,
        session_timeout: SESSION_TIMEOUT,
    };
    Ok((spec, sources))
}
