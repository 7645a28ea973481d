//! Scenario (e) of docs/scale-out.md: an instance SIGKILLed and never
//! restarted. Its static memberships expire after the session timeout
//! (10 s), the groups rebalance, and the other instances restore its tasks
//! from the shared checkpoint store and carry on. Runs on librdkafka's
//! MockCluster (in this test process; the `eddy` processes reach it over
//! TCP): it expires members, which noida-db cannot (no session timer), but
//! it implements none of a transaction's effects, so the rows the killed
//! instance wrote after its last checkpoint stay visible and run again
//! from the checkpoint. The judgement is therefore "nothing lost": every
//! window of the independent computation is written, and no row of it
//! counts fewer bids than the computation (a replay can only add).

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::kafka::unique;
use crate::oracle::Rows;
use crate::scale::{Cluster, Scenario, others_take_over, run, windows};
use crate::serial;

#[test]
fn the_others_take_over_from_an_instance_killed_for_good() {
    let _one = serial();
    let mock: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).expect("mock cluster");
    let create = |topic: &str, partitions: i32| {
        mock.create_topic(topic, partitions, 1).expect("topic");
    };
    let app = unique("takeover");
    // what `eddy run` would create: as many partitions as the source
    create(&format!("eddy.{app}.repartition"), 6);
    let s = Scenario {
        name: "takeover",
        // the mock has no transactions: at-least-once, the hop too
        delivery: "at-least-once",
        partitioned: false,
        events: |cluster, rng| {
            // the session timeout (10 s), then the rebalance
            let within = Duration::from_secs(60);
            // every task has a checkpoint to be restored from (six per stage)
            cluster.wait_for("every task checkpointed", within, |c| {
                c.checkpointed_tasks() >= 12
            });
            let k = others_take_over(cluster, rng, ("SIGKILLed", Cluster::kill), within);
            // its tasks carry on elsewhere from their checkpoints
            let tasks: Vec<String> = cluster
                .logs(k)
                .lines()
                .filter_map(|l| l.split_once("task ")?.1.split_once(" started"))
                .map(|(task, _)| task.to_string())
                .collect();
            cluster.wait_for(
                "a task of the killed instance restored from its checkpoint",
                Duration::from_secs(10),
                |c| {
                    (0..3).filter(|o| *o != k).any(|o| {
                        let log = c.logs(o);
                        tasks
                            .iter()
                            .any(|t| log.contains(&format!("task {t} started from checkpoint")))
                    })
                },
            );
        },
        judge: loses_nothing,
    };
    run(&s, (&mock.bootstrap_servers(), &create), &app);
}

/// Every window of `want` is in `got`, and no row of `got` for it counts
/// fewer bids or a smaller total than `want`'s.
fn loses_nothing(context: &str, want: &Rows, got: &Rows) {
    let missing: Vec<_> = windows(want).difference(&windows(got)).copied().collect();
    assert!(
        missing.is_empty(),
        "{context}: {} of {} windows missing (e.g. {:?})",
        missing.len(),
        want.len(),
        &missing[..missing.len().min(3)]
    );
    let fields = |r: &String| -> Option<((String, String), (i64, i64))> {
        let f: Vec<&str> = r.split(' ').collect();
        Some((
            (f.first()?.to_string(), f.get(1)?.to_string()),
            (f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?),
        ))
    };
    let want: std::collections::BTreeMap<_, _> = want.iter().filter_map(fields).collect();
    let short: Vec<&String> = got
        .iter()
        .filter(|r| {
            fields(r).is_some_and(|(w, (n, total))| {
                want.get(&w).is_some_and(|(wn, wt)| n < *wn || total < *wt)
            })
        })
        .collect();
    // what the replay after the kill added (at-least-once allows it)
    let exact: std::collections::BTreeSet<String> = want
        .iter()
        .map(|((a, w), (n, t))| format!("{a} {w} {n} {t}"))
        .collect();
    eprintln!(
        "{context}: {} rows written for {} windows; {} of them differ from the computation (windows counted again after the replay or written twice)",
        got.len(),
        want.len(),
        got.iter().filter(|r| !exact.contains(*r)).count()
    );
    assert!(
        short.is_empty(),
        "{context}: {} rows count fewer bids than the computation (e.g. {:?})",
        short.len(),
        &short[..short.len().min(3)]
    );
}
