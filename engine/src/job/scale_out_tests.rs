//! A query split at its exchange and run as two jobs through a repartition
//! topic (librdkafka's mock cluster) writes the rows the query writes in one
//! process: keys land in the partition their key group belongs to, and the
//! watermark records carry event time across without making a row late.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use super::scale_out::Stages;
use crate::connectors::SourceContext;
use crate::connectors::kafka::repartition::RepartitionTopic;
use crate::job::JobManager;
use crate::{CollectSink, RunOptions};

fn rows(batches: &[arrow::record_batch::RecordBatch]) -> Vec<String> {
    let mut out: Vec<String> = arrow::util::pretty::pretty_format_batches(batches)
        .expect("formats")
        .to_string()
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains("auction"))
        .map(str::to_string)
        .collect();
    out.sort_unstable();
    out
}

/// Runs the query's two stages through `topic`: concurrently, or stage 2
/// only once stage 1 has written everything (then it reads partitions far
/// apart: one to its end before the next, the hardest case for the
/// watermark records).
fn split_run(
    plan: &crate::PhysicalPlan,
    topic: &RepartitionTopic,
    config: &ClientConfig,
    options: &RunOptions,
    concurrent: bool,
) -> (Vec<arrow::record_batch::RecordBatch>, crate::QueryStats) {
    let stages = Stages::split(plan, topic).expect("splits");
    let (first, second) = stages
        .jobs("q", topic, config, (&SourceContext::new(1024), options))
        .expect("jobs");
    let sink = CollectSink::default();
    let second = second.sink(Box::new(sink.clone()));
    let jobs = JobManager::new();
    let second = if concurrent {
        let second = jobs.submit(second).expect("stage 2 starts");
        let first = jobs.submit(first).expect("stage 1 starts");
        first.wait().expect("stage 1 ends");
        second
    } else {
        let first = jobs.submit(first).expect("stage 1 starts");
        first.wait().expect("stage 1 ends");
        jobs.submit(second).expect("stage 2 starts")
    };
    let started = std::time::Instant::now();
    let stats = second.wait().expect("stage 2 ends with stage 1's input");
    assert!(started.elapsed() < Duration::from_secs(60));
    (sink.batches(), stats)
}

/// The query of these tests and its rows from one process.
fn query() -> (crate::PhysicalPlan, Vec<String>) {
    let script = crate::plan_script(
        "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND)
           WITH (connector = 'nexmark', stream = 'bid', events = '30000', seed = '7',
                 out_of_order = '0.1', max_delay_ms = '1500');
         SELECT auction, window_start, COUNT(*) AS n, SUM(price) AS total, MAX(bidder) AS top
         FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND)
         WHERE price > 100
         GROUP BY auction, window_start, window_end",
    )
    .expect("plans");
    let plan = script.queries[0].clone();
    let (straight, _) = crate::collect(&plan, &RunOptions::default()).expect("runs");
    let want = rows(&straight);
    assert!(want.len() > 100, "{} rows", want.len());
    (plan, want)
}

#[test]
fn two_stages_through_a_repartition_topic_write_what_one_process_writes() {
    let cluster: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).expect("mock cluster");
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", cluster.bootstrap_servers());
    let (plan, want) = query();
    let plan = &plan;
    let options = RunOptions {
        partitions: 2,
        ..RunOptions::default()
    };
    for (i, concurrent) in [true, false].into_iter().enumerate() {
        let topic = RepartitionTopic {
            name: format!("eddy.q{i}.repartition"),
            partitions: 4,
        };
        cluster
            .create_topic(&topic.name, topic.partitions, 1)
            .expect("topic");
        let (got, stats) = split_run(plan, &topic, &config, &options, concurrent);
        assert_eq!(stats.late_dropped, 0, "concurrent: {concurrent}");
        let got = rows(&got);
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter()
                .filter(|l| !b.contains(l))
                .take(3)
                .cloned()
                .collect()
        };
        assert!(
            want == got,
            "concurrent: {concurrent}: {} rows in one process, {} split; only in one: {:?}; only split: {:?}",
            want.len(),
            got.len(),
            only(&want, &got),
            only(&got, &want)
        );
    }
}

/// With checkpoints, stage 1 writes in transactions (committed with each
/// durable checkpoint) and stage 2 reads `read_committed`: on a broker with
/// transactions (noida-db, `EDDY_TEST_KAFKA`), still the same rows.
#[test]
fn exactly_once_stages_write_what_one_process_writes() {
    let Ok(bootstrap) = std::env::var("EDDY_TEST_KAFKA") else {
        eprintln!("skipped: set EDDY_TEST_KAFKA to a broker with transactions");
        return;
    };
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &bootstrap);
    let topic = RepartitionTopic {
        name: format!("eddy.eos{}.repartition", crate::checkpoint::new_run()),
        partitions: 3,
    };
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        config.create().expect("admin");
    let new = rdkafka::admin::NewTopic::new(
        &topic.name,
        topic.partitions,
        rdkafka::admin::TopicReplication::Fixed(1),
    );
    let created =
        futures_executor_block(admin.create_topics(&[new], &rdkafka::admin::AdminOptions::new()));
    assert!(created.is_ok(), "{created:?}");
    let (plan, want) = query();
    let dir = tempfile::tempdir().expect("temp dir");
    let options = RunOptions {
        checkpoint: Some(crate::CheckpointConfig {
            interval: Duration::from_millis(100),
            ..crate::CheckpointConfig::new(dir.path().to_str().expect("utf-8"))
        }),
        ..RunOptions::default()
    };
    let (got, stats) = split_run(&plan, &topic, &config, &options, true);
    assert_eq!(stats.late_dropped, 0);
    assert_eq!(want, rows(&got));
    assert!(stats.checkpoints.completed > 0);
}

/// Runs a future to completion on this thread.
fn futures_executor_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}
