//! A query split at its exchange and run as two jobs through a repartition
//! topic (librdkafka's mock cluster) writes the rows the query writes in one
//! process: keys land in the partition their key group belongs to, and the
//! watermark records carry event time across without making a row late.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use super::scale_out::{Stages, Task};
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
    let mut stages = Stages::split(plan, topic).expect("splits");
    // with checkpoints, the transactional hop (the rows go to a test sink)
    stages.exactly_once = options.checkpoint.is_some();
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
    let (cluster, _, config) = mock();
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
    let Some((_, config)) = broker() else {
        return;
    };
    let topic = RepartitionTopic {
        name: format!("eddy.eos{}.repartition", crate::checkpoint::new_run()),
        partitions: 3,
    };
    create_topic(&config, &topic.name, topic.partitions);
    let (plan, want) = query();
    let dir = tempfile::tempdir().expect("temp dir");
    let options = checkpointed(dir.path(), 100);
    let (got, stats) = split_run(&plan, &topic, &config, &options, true);
    assert_eq!(stats.late_dropped, 0);
    assert_eq!(want, rows(&got));
    assert!(stats.checkpoints.completed > 0);
}

/// librdkafka's mock cluster, its bootstrap servers and client settings.
fn mock() -> (
    MockCluster<'static, DefaultProducerContext>,
    String,
    ClientConfig,
) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &bootstrap);
    (cluster, bootstrap, config)
}

/// Starts every task of `stages` as a job of its own (stage 2's writing
/// into `sink`), as the instances between them would.
fn start_tasks(
    stages: &Stages,
    (topic, config): (&RepartitionTopic, &ClientConfig),
    options: &RunOptions,
    sink: &CollectSink,
    jobs: &JobManager,
) -> (Vec<Task>, Vec<crate::JobHandle>) {
    let sources = stages.source_partitions().expect("partitions");
    let mut tasks: Vec<Task> = sources
        .iter()
        .map(|(t, p)| Task::First(t.clone(), *p))
        .collect();
    tasks.extend((0..topic.partitions).map(Task::Second));
    let handles = tasks
        .iter()
        .map(|task| {
            let mut spec = stages
                .task(("q", task), topic, config, &sources, options)
                .expect("task job");
            if let Task::Second(_) = task {
                spec = spec.sink(Box::new(sink.clone()));
            }
            jobs.submit(spec).expect("starts")
        })
        .collect();
    (tasks, handles)
}

/// Options taking a checkpoint every `ms` into `dir`.
fn checkpointed(dir: &std::path::Path, ms: u64) -> RunOptions {
    RunOptions {
        checkpoint: Some(crate::CheckpointConfig {
            interval: Duration::from_millis(ms),
            ..crate::CheckpointConfig::new(dir.to_str().expect("utf-8"))
        }),
        ..RunOptions::default()
    }
}

/// Runs a future to completion on this thread.
fn futures_executor_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// The broker with transactions the tests may use (`EDDY_TEST_KAFKA`:
/// noida-db), and a client config for it; `None` (the test is skipped)
/// without one.
fn broker() -> Option<(String, ClientConfig)> {
    let Ok(bootstrap) = std::env::var("EDDY_TEST_KAFKA") else {
        eprintln!("skipped: set EDDY_TEST_KAFKA to a broker with transactions");
        return None;
    };
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &bootstrap);
    Some((bootstrap, config))
}

/// Creates `name` with `partitions` partitions on the broker of `config`.
fn create_topic(config: &ClientConfig, name: &str, partitions: i32) {
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        config.create().expect("admin");
    let new =
        rdkafka::admin::NewTopic::new(name, partitions, rdkafka::admin::TopicReplication::Fixed(1));
    let created =
        futures_executor_block(admin.create_topics(&[new], &rdkafka::admin::AdminOptions::new()));
    assert!(created.is_ok(), "{created:?}");
}

/// A bounded Kafka input of four partitions of `per_partition` rows (a fresh
/// topic), the query over it with its rows from one process, and a fresh
/// repartition topic of three partitions.
/// Creates a topic with a number of partitions.
type CreateTopic<'a> = dyn Fn(&str, i32) + 'a;

fn kafka_query(
    (bootstrap, create): (&str, &CreateTopic<'_>),
    config: &ClientConfig,
    per_partition: i64,
) -> (crate::PhysicalPlan, Vec<String>, RepartitionTopic) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let run = crate::checkpoint::new_run();
    let input = format!("bids-{run}");
    create(&input, 4);
    let topic = RepartitionTopic {
        name: format!("eddy.tasks{run}.repartition"),
        partitions: 3,
    };
    create(&topic.name, topic.partitions);
    // per partition, event time moves on 10 ms a row, up to 500 ms out of
    // order (inside the 2 s watermark delay: no row is late anywhere)
    let producer: BaseProducer = config.create().expect("producer");
    let mut x = 99u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for p in 0..4 {
        for i in 0..per_partition {
            let t = 1_767_225_600_000 + i * 10 - (next() % 500) as i64;
            let value = format!(
                "{{\"auction\": {}, \"price\": {}, \"date_time\": {t}}}",
                next() % 40,
                next() % 1000
            );
            producer
                .send(
                    BaseRecord::<(), str>::to(&input)
                        .partition(p)
                        .payload(&value),
                )
                .expect("queued");
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(30)).expect("produced");
    let script = crate::plan_script(&format!(
        "CREATE STREAM bids (auction BIGINT, price BIGINT, date_time TIMESTAMP,
           WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND)
           WITH (connector = 'kafka', topic = '{input}', 'properties.bootstrap.servers' = '{bootstrap}',
                 'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset');
         SELECT auction, window_start, COUNT(*) AS n, SUM(price) AS total
         FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND)
         GROUP BY auction, window_start, window_end"
    ))
    .expect("plans");
    let plan = script.queries[0].clone();
    let (straight, _) = crate::collect(&plan, &RunOptions::default()).expect("runs");
    let want = rows(&straight);
    assert!(want.len() > 500, "{} rows", want.len());
    (plan, want, topic)
}

/// Every task of the query as a job of its own — four stage-1 tasks, one per
/// source partition, and three stage-2 tasks, one per repartition partition,
/// each with its own checkpoints and transactional id — writes exactly what
/// one process writes reading all four partitions (noida-db).
#[test]
fn one_job_per_task_writes_what_one_process_writes() {
    let Some((bootstrap, config)) = broker() else {
        return;
    };
    let (plan, want, topic) = kafka_query(
        (&bootstrap, &|t, p| create_topic(&config, t, p)),
        &config,
        2_500,
    );
    let plan = &plan;

    let mut stages = Stages::split(plan, &topic).expect("splits");
    // the transactional hop (the rows go to a test sink)
    stages.exactly_once = true;
    let sources = stages.source_partitions().expect("partitions");
    assert_eq!(sources.len(), 4);
    let dir = tempfile::tempdir().expect("temp dir");
    let options = checkpointed(dir.path(), 200);
    let sink = CollectSink::default();
    let jobs = JobManager::new();
    let (tasks, handles) = start_tasks(&stages, (&topic, &config), &options, &sink, &jobs);
    for (task, h) in tasks.iter().zip(handles) {
        let stats = h.wait().unwrap_or_else(|e| panic!("{task:?}: {e}"));
        assert_eq!(stats.late_dropped, 0, "{task:?}");
    }
    assert_eq!(want, rows(&sink.batches()));
    // each task checkpointed under its own name
    for task in &tasks {
        assert!(dir.path().join(task.name("q")).is_dir(), "{task:?}");
    }
}

/// Two instances of the query in one process (each its own group members,
/// as `eddy run --instance-id` runs them), the second joining 0.7 s after
/// the first: the groups split the partitions between them (a task the
/// first already ran is stopped at a checkpoint and taken over from it) and
/// together they write exactly what one process writes; once every task has
/// finished, the store says so.
#[test]
fn two_instances_share_the_tasks_and_write_what_one_process_writes() {
    use super::instance::{Instance, InstanceSpec, all_finished};
    let Some((bootstrap, config)) = broker() else {
        return;
    };
    let (plan, want, topic) = kafka_query(
        (&bootstrap, &|t, p| create_topic(&config, t, p)),
        &config,
        40_000,
    );
    let mut stages = Stages::split(&plan, &topic).expect("splits");
    // the transactional hop (the rows go to a test sink)
    stages.exactly_once = true;
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = CollectSink::default();
    let spec = |instance: &str| {
        let sink = sink.clone();
        InstanceSpec {
            query: format!("q{}", topic.name.len()),
            instance: instance.to_string(),
            stages: stages.clone(),
            topic: topic.clone(),
            config: config.clone(),
            options: checkpointed(dir.path(), 200),
            sink: Some(std::sync::Arc::new(move || Box::new(sink.clone()))),
            session_timeout: Duration::from_secs(10),
        }
    };
    let sources = stages.source_partitions().expect("partitions");
    let mut first = Instance::start(spec("a")).expect("a starts");
    std::thread::sleep(Duration::from_millis(700));
    let mut second = Instance::start(spec("b")).expect("b starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let (mut ran_a, mut ran_b) = (BTreeSet::new(), BTreeSet::new());
    while !all_finished(&spec("a"), &sources).expect("reads the store") {
        assert!(
            std::time::Instant::now() < deadline,
            "the tasks did not finish"
        );
        ran_a.extend(first.tasks());
        ran_b.extend(second.tasks());
        std::thread::sleep(Duration::from_millis(20));
    }
    first.stop();
    second.stop();
    first.wait().expect("a ran");
    second.wait().expect("b ran");
    eprintln!("a ran {ran_a:?}; b ran {ran_b:?}");
    // which tasks b got (at once, taken over from a, or none when a had
    // finished first) depends on timing; the processes of
    // engine/tests/crash/scale.rs share a paced input
    assert!(!ran_a.is_empty(), "{ran_a:?} {ran_b:?}");
    let got = rows(&sink.batches());
    assert_eq!(want.len(), got.len());
    assert_eq!(want, got);
}

/// An instance's share shows in the metrics: how many tasks of each stage
/// it runs, each task by name, and each task's counters under its name.
/// On the mock cluster (no transactions: the hop at-least-once, exact
/// without a crash).
#[test]
fn an_instance_reports_its_tasks_in_the_metrics() {
    use super::instance::{Instance, InstanceSpec, all_finished};
    let (cluster, bootstrap, config) = mock();
    let create = |t: &str, p: i32| cluster.create_topic(t, p, 1).expect("topic");
    let (plan, want, topic) = kafka_query((&bootstrap, &create), &config, 20_000);
    let mut stages = Stages::split(&plan, &topic).expect("splits");
    stages.exactly_once = false;
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = CollectSink::default();
    let collected = sink.clone();
    let spec = InstanceSpec {
        query: "q".into(),
        instance: "a".into(),
        stages,
        topic,
        config,
        options: checkpointed(dir.path(), 200),
        sink: Some(std::sync::Arc::new(move || Box::new(collected.clone()))),
        session_timeout: Duration::from_secs(10),
    };
    let sources = spec.stages.source_partitions().expect("partitions");
    let mut instance = Instance::start(spec.clone()).expect("starts");
    let exporter = crate::exec::export::Exporter::default();
    exporter.register_share(instance.share());
    let all_running = [
        "eddy_instance_tasks{query=\"q\",instance=\"a\",stage=\"1\"} 4\n",
        "eddy_instance_tasks{query=\"q\",instance=\"a\",stage=\"2\"} 3\n",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut seen = None;
    while !all_finished(&spec, &sources).expect("reads the store") {
        assert!(std::time::Instant::now() < deadline, "not finished");
        let text = exporter.render();
        if seen.is_none() && all_running.iter().all(|l| text.contains(l)) {
            seen = Some(text);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    instance.stop();
    instance.wait().expect("ran");
    assert_eq!(want, rows(&sink.batches()));
    let seen = seen.expect("every task running at one scrape");
    for line in [
        "eddy_instance_task{query=\"q\",instance=\"a\",task=\"q.s2.r0\"} 1\n",
        "eddy_instance_rebalances_total{query=\"q\",instance=\"a\"} 0\n",
    ] {
        assert!(seen.contains(line), "no {line} in\n{seen}");
    }
    let topic_in = sources[0].0.clone();
    let task = format!("eddy_source_rows_total{{query=\"q.s1.{topic_in}.p0\"}}");
    assert!(seen.contains(&task), "no {task} in\n{seen}");
}

/// A source partition silent for the `idle_timeout` does not hold stage
/// 2 back: its stage-1 task says so in its watermark records, and stage 2
/// leaves it out as one process leaves an idle partition out (when every
/// partition is idle, event time goes on from the furthest). Before, the
/// silent partition's watermark crept on with the wall clock and held every
/// later window of the busy one open. One task per partition, on the mock
/// cluster.
#[test]
fn a_silent_source_partition_does_not_hold_stage_two_back() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let (cluster, bootstrap, config) = mock();
    let topic = RepartitionTopic {
        name: "eddy.idle.repartition".into(),
        partitions: 2,
    };
    for (t, p) in [("idle-in", 2), (topic.name.as_str(), 2)] {
        cluster.create_topic(t, p, 1).expect("topic");
    }
    // partition 1: one second of event time, then silence; partition 0:
    // ten minutes of it
    let t0 = 1_767_225_600_000_i64;
    let producer: BaseProducer = config.create().expect("producer");
    let input = (0..10)
        .map(|i| (1, t0 + i * 100))
        .chain((0..2_000).map(|i| (0, t0 + i * 300)));
    for (p, t) in input {
        let value = format!("{{\"auction\": {}, \"date_time\": {t}}}", t % 7);
        let record = BaseRecord::<(), str>::to("idle-in")
            .partition(p)
            .payload(&value);
        producer.send(record).expect("queued");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("produced");
    let script = crate::plan_script(&format!(
        "CREATE STREAM bids (auction BIGINT, date_time TIMESTAMP,
           WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND)
           WITH (connector = 'kafka', topic = 'idle-in', 'properties.bootstrap.servers' = '{bootstrap}',
                 'scan.startup.mode' = 'earliest', idle_timeout = '300 ms');
         SELECT auction, window_start, COUNT(*) AS n
         FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
         GROUP BY auction, window_start, window_end"
    ))
    .expect("plans");
    let stages = Stages::split(&script.queries[0], &topic).expect("splits");
    let dir = tempfile::tempdir().expect("temp dir");
    let options = checkpointed(dir.path(), 200);
    let sink = CollectSink::default();
    let jobs = JobManager::new();
    let (_, handles) = start_tasks(&stages, (&topic, &config), &options, &sink, &jobs);
    // the busy partition's windows up to minute 9 close within seconds
    let start = crate::types::format_timestamp_ms(t0 + 540_000);
    let want = start.trim_end_matches('Z');
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let closed = loop {
        let got = rows(&sink.batches());
        if got.iter().any(|r| r.contains(want)) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for h in &handles {
        h.stop();
    }
    for h in handles {
        let _ = h.wait();
    }
    let got = rows(&sink.batches());
    assert!(
        closed,
        "the window at {want} did not close within 30 s; the last rows: {:?}",
        &got[got.len().saturating_sub(3)..]
    );
}
