//! `eddy run --instance-id K`: this process's share of a query run by
//! several (docs/scale-out.md). It joins the query's stage groups and runs
//! the tasks they assign it until every task has finished (a bounded
//! input) or Ctrl-C / SIGTERM stops it (its tasks checkpoint and commit,
//! then it leaves the groups so the others take its partitions).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, bail};
use eddy::exec::export::Exporter;
use eddy::job::instance::{Instance, InstanceEvent, all_finished};
use eddy::job::scale_out::{existing_partitions, topic_name};
use eddy::job::scale_out_explain::TopicFacts;
use eddy::job::share::{check_shareable, instance_spec, stages_of};
use eddy::{RunOptions, Script};

use crate::run::watch_signals;

/// Runs instance `instance` of the script's one query, named `app`.
pub(crate) fn run_instance(
    script: &Script,
    app: &str,
    instance: &str,
    options: RunOptions,
    (quiet, exporter): (bool, Option<Arc<Exporter>>),
) -> Result<()> {
    let plan = one_query(script)?;
    let (spec, sources) = instance_spec(plan, (app, instance), options)?;
    let topic = spec.topic.clone();
    let mut running = Instance::start(spec.clone())?;
    if let Some(e) = &exporter {
        // each task's counters under its name, the tasks owned, the rebalances
        e.register_share(running.share());
    }
    if spec.stages.hop {
        eprintln!(
            "instance {instance} of '{app}': {} source partitions, repartition topic '{}' ({} partitions)",
            sources.len(),
            topic.name,
            topic.partitions
        );
    } else {
        eprintln!(
            "instance {instance} of '{app}': {} source partitions, partitioned by the grouping key: each task runs the whole query, no repartition topic",
            sources.len()
        );
    }
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let signalled = watch_signals({
        let stopped = stopped.clone();
        move || stopped.store(true, Ordering::SeqCst)
    })?;
    let report = |running: &Instance| {
        for e in running.take_events() {
            if !quiet {
                eprintln!("instance {instance}: {}", describe(&e, app));
            }
        }
    };
    while !stopped.load(Ordering::SeqCst) && running.is_running() {
        report(&running);
        if all_finished(&spec, &sources)? {
            eprintln!("every task of '{app}' has finished");
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    running.stop();
    let rebalances = running.rebalances();
    // the tasks' last checkpoints and commits, then the members leave
    let result = running.wait();
    report(&running);
    if !quiet && rebalances.count > 0 {
        eprintln!(
            "instance {instance}: {} rebalances, the last took {:.1?}",
            rebalances.count,
            rebalances.last.unwrap_or_default()
        );
    }
    result?;
    match signalled.load(Ordering::SeqCst) {
        0 => Ok(()),
        code => std::process::exit(code),
    }
}

/// The script's one query, if several processes can share it.
fn one_query(script: &Script) -> Result<&eddy::PhysicalPlan> {
    let [plan] = script.queries.as_slice() else {
        bail!(
            "--instance-id runs one query, and the script has {}; put each query in a script of its own",
            script.queries.len()
        );
    };
    check_shareable(plan)?;
    Ok(plan)
}

/// `eddy explain --scale-out`: the query's stages as instances named `app`
/// run them, with the partition counts the broker gives (if it answers).
pub(crate) fn explain(script: &Script, app: &str, json: bool) -> Result<()> {
    let plan = one_query(script)?;
    let stages = stages_of(plan, app, 0)?;
    let config = stages.cluster_config();
    let facts = TopicFacts {
        sources: stages.source_partitions().map_err(|e| e.to_string()),
        repartition: existing_partitions(&config, &topic_name(app))
            .ok()
            .flatten(),
    };
    let stages = match facts.partitions() {
        Some(partitions) if stages.hop => stages_of(plan, app, partitions)?,
        _ => stages,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stages.explain_json(app, &facts))?
        );
    } else {
        print!("{}", stages.explain_text(app, &facts));
    }
    Ok(())
}

/// An instance event as the log line says it.
fn describe(e: &InstanceEvent, app: &str) -> String {
    match e {
        InstanceEvent::Revoked { stage, partitions } => {
            format!("stage {stage}: the group took back {partitions} partitions")
        }
        InstanceEvent::Assigned {
            stage,
            partitions,
            took,
        } => match took {
            Some(t) => format!(
                "stage {stage}: assigned {partitions} partitions, {t:.1?} after the rebalance began"
            ),
            None => format!("stage {stage}: assigned {partitions} partitions"),
        },
        InstanceEvent::Started {
            task,
            restored: Some((id, took)),
        } => format!(
            "task {} started from checkpoint {id} (restored in {took:.1?})",
            task.name(app)
        ),
        InstanceEvent::Started {
            task,
            restored: None,
        } => format!("task {} started (no checkpoint yet)", task.name(app)),
        InstanceEvent::Stopped(t) => {
            format!("task {} stopped (checkpointed, committed)", t.name(app))
        }
        InstanceEvent::Finished(t) => format!("task {} finished: its input ended", t.name(app)),
    }
}
