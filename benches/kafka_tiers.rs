//! The four Kafka consumer tiers (`standard`, `buffered`, `dedicated`,
//! `legacy`) against a real Kafka-protocol broker, next to the raw
//! librdkafka consume rate against the same broker in the same run.
//!
//! 1. Produces 1,000,000 JSON bids of about 100 bytes round-robin over a
//!    fresh 4-partition topic (the produce time is printed).
//! 2. Raw rate: a `BaseConsumer` assigned to every partition at its low
//!    watermark, polling until it has seen every message.
//! 3. Throughput per tier: `SELECT auction, price, _timestamp FROM bids` over
//!    that topic in bounded mode (`scan.bounded.mode = 'latest-offset'`),
//!    rows counted by a sink of our own; msg/s = records in / elapsed.
//! 4. Produce-to-emit latency per tier: the same query unbounded from the
//!    latest offsets of a fresh topic while a producer thread sends 20,000
//!    msg/s for 5 s (bursts every 10 ms, Kafka timestamp = send time); the
//!    sink records `now - _timestamp` per row; p50 and p99 are reported.
//!    The throughput topic is deleted first, and each latency topic after
//!    its run, so the broker holds little while latency is measured.
//!
//! Steps 2 and 3 are repeated `EDDY_BENCH_RUNS` times (default 3), then
//! step 4 as often; the medians are printed as a markdown table, with
//! whether the tiers meet their targets.
//!
//! Run: `cargo bench --bench kafka_tiers`. The broker is the one at
//! `EDDY_TEST_KAFKA` (`host:port`); when that is unset the bench starts one
//! with `scripts/kafka-broker.sh` and stops it at the end.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::TimestampMillisecondType;
use arrow::record_batch::RecordBatch;
use eddy::connectors::Sink;
use eddy::{ConnectorError, RunOptions};
use eddy_suite::kafka::{BROKER_ENV, Broker, now_ms, produce_to, topic_name};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// Messages in the throughput topic.
const MESSAGES: usize = 1_000_000;
/// Partitions of every topic.
const PARTITIONS: i32 = 4;
/// Records per `produce_to` call, to bound memory.
const PRODUCE_CHUNK: usize = 100_000;
/// The tiers, in table order.
const TIERS: [&str; 4] = ["standard", "buffered", "dedicated", "legacy"];
/// `date_time` of the first throughput message (1 ms apart after it).
const BASE_TIME_MS: i64 = 1_767_225_600_000;
/// How long a bounded run or the raw consumer may take before it counts as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// A pause before each measurement, so the broker has finished what the
/// previous step left it to do (noida-db rewrites its whole data file, about
/// 450 MB with the throughput topic, a few seconds after changes).
const SETTLE: Duration = Duration::from_secs(5);
/// librdkafka's `receive.message.max.bytes` for every consumer here: some
/// Kafka-protocol brokers (noida-db) ignore the fetch size limits and answer
/// one fetch with everything a partition holds (~30 MB per partition here),
/// past librdkafka's 100 MB default; a real Kafka broker never sends that much.
const RECEIVE_MAX_BYTES: &str = "1000000000";

/// Latency phase: messages per second, for how long, in bursts this far apart.
const LATENCY_RATE: usize = 20_000;
const LATENCY_SECS: usize = 5;
const BURST_EVERY: Duration = Duration::from_millis(10);
/// How long the unbounded query runs before the producer starts.
const LATENCY_WARMUP: Duration = Duration::from_millis(1500);
/// How long to wait after producing for the sink to see every row.
const LATENCY_DRAIN: Duration = Duration::from_secs(10);

const CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

// ---------------------------------------------------------------- broker

/// The broker under test; stops it on drop when this bench started it.
struct BrokerProcess {
    addr: String,
    /// The workspace root, when we started the broker with its script.
    started_in: Option<PathBuf>,
}

impl BrokerProcess {
    /// `EDDY_TEST_KAFKA`, or a broker started by `scripts/kafka-broker.sh`.
    fn find_or_start() -> Self {
        if let Ok(addr) = std::env::var(BROKER_ENV)
            && !addr.trim().is_empty()
        {
            return Self {
                addr: addr.trim().to_string(),
                started_in: None,
            };
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
        eprintln!("{BROKER_ENV} is not set: starting a broker with scripts/kafka-broker.sh");
        let out = Command::new(root.join("scripts/kafka-broker.sh"))
            .current_dir(&root)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/kafka-broker.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "scripts/kafka-broker.sh failed ({}): {stdout}",
            out.status
        );
        let prefix = format!("export {BROKER_ENV}=");
        let addr = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(&prefix))
            .unwrap_or_else(|| {
                panic!("scripts/kafka-broker.sh printed no `{prefix}…` line: {stdout}")
            })
            .trim()
            .to_string();
        Self {
            addr,
            started_in: Some(root),
        }
    }

    fn describe(&self) -> String {
        match self.started_in {
            Some(_) => format!("{} (started by scripts/kafka-broker.sh)", self.addr),
            None => format!("{} (from {BROKER_ENV})", self.addr),
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let Some(root) = &self.started_in else {
            return;
        };
        let stopped = Command::new(root.join("scripts/kafka-broker.sh"))
            .arg("stop")
            .current_dir(root)
            .status();
        if !stopped.as_ref().is_ok_and(|s| s.success()) {
            eprintln!("could not stop the broker: {stopped:?}");
        }
    }
}

// ---------------------------------------------------------------- input

/// A deterministic 64-bit mix of `i` (splitmix64).
fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Bid `i` as JSON, about 100 bytes.
fn bid_json(i: u64, date_time: i64) -> String {
    let x = mix(i);
    format!(
        r#"{{"auction":{},"bidder":{},"price":{}.{:02},"channel":"{}","url":"https://x.example/{:08x}","date_time":{date_time}}}"#,
        1000 + x % 9000,
        1000 + (x >> 14) % 9000,
        1 + (x >> 28) % 999,
        (x >> 38) % 100,
        CHANNELS[((x >> 46) % 4) as usize],
        (x >> 32) as u32,
    )
}

/// Produces the throughput topic; returns the time taken and the mean message size.
fn produce_million(addr: &str, topic: &str) -> (Duration, f64) {
    let start = Instant::now();
    let mut bytes = 0usize;
    for chunk in (0..MESSAGES).step_by(PRODUCE_CHUNK) {
        let records: Vec<(i32, Option<String>, Option<String>)> = (chunk
            ..(chunk + PRODUCE_CHUNK).min(MESSAGES))
            .map(|i| {
                let value = bid_json(i as u64, BASE_TIME_MS + i as i64);
                bytes += value.len();
                ((i % PARTITIONS as usize) as i32, None, Some(value))
            })
            .collect();
        produce_to(addr, topic, &records);
    }
    (start.elapsed(), bytes as f64 / MESSAGES as f64)
}

/// Deletes `topic`: noida-db keeps every record in memory and rewrites its
/// whole data file as it changes, so a broker holding less disturbs the
/// next measurement less. Failures are only reported.
fn delete_topic(addr: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        match ClientConfig::new().set("bootstrap.servers", addr).create() {
            Ok(a) => a,
            Err(e) => return eprintln!("could not delete topic {topic}: {e}"),
        };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    match rt.block_on(admin.delete_topics(&[topic], &options)) {
        Ok(results) => {
            for (t, code) in results.into_iter().filter_map(Result::err) {
                eprintln!("could not delete topic {t}: {code}");
            }
        }
        Err(e) => eprintln!("could not delete topic {topic}: {e}"),
    }
}

// ---------------------------------------------------------------- raw rate

/// One raw read of the throughput topic.
struct RawRun {
    /// Messages per second, from `assign` to the last message.
    rate: f64,
    /// From `assign` to the first message.
    first: Duration,
}

/// How fast a bare `BaseConsumer` reads the whole throughput topic.
fn raw_rate(addr: &str, topic: &str, group: &str) -> Result<RawRun, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        // as the engine's consumers: no offset stored per message
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "50")
        .set("receive.message.max.bytes", RECEIVE_MAX_BYTES)
        .create()
        .map_err(|e| format!("raw consumer: {e}"))?;
    // Each partition from its low watermark, looked up first as the engine
    // does: `Offset::Beginning` would make librdkafka look the offsets up
    // itself after `assign`, inside the timed part.
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let (low, _) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(|e| format!("raw consumer: offsets of partition {p}: {e}"))?;
        tpl.add_partition_offset(topic, p, Offset::Offset(low))
            .map_err(|e| format!("raw consumer: {e}"))?;
    }
    let start = Instant::now();
    consumer
        .assign(&tpl)
        .map_err(|e| format!("raw consumer: assign: {e}"))?;
    let (mut n, mut bytes, mut errors) = (0usize, 0usize, 0usize);
    let mut first = None;
    while n < MESSAGES {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(|| start.elapsed());
                n += 1;
                bytes += m.payload().map_or(0, <[u8]>::len);
            }
            Some(Err(e)) => {
                if errors == 0 {
                    eprintln!("raw consumer: {e}");
                }
                errors += 1;
            }
            None if start.elapsed() > RUN_TIMEOUT => {
                return Err(format!(
                    "raw consumer: only {n} of {MESSAGES} messages after {RUN_TIMEOUT:?}"
                ));
            }
            None => {}
        }
    }
    let elapsed = start.elapsed();
    black_box(bytes);
    Ok(RawRun {
        rate: n as f64 / elapsed.as_secs_f64(),
        first: first.unwrap_or(elapsed),
    })
}

// ---------------------------------------------------------------- the engine

/// The bench query over `topic`; `bounded` reads what the topic holds from
/// the beginning, otherwise from the latest offsets on.
fn tier_sql(addr: &str, topic: &str, tier: &str, group: &str, bounded: bool) -> String {
    let scan = if bounded {
        "'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset'"
    } else {
        "'scan.startup.mode' = 'latest'"
    };
    format!(
        "CREATE STREAM bids (auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, url VARCHAR,
           date_time TIMESTAMP, WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
         WITH (connector = 'kafka', topic = '{topic}', 'properties.bootstrap.servers' = '{addr}',
               'properties.group.id' = '{group}', 'properties.receive.message.max.bytes' = '{RECEIVE_MAX_BYTES}',
               {scan}, 'consumer.tier' = '{tier}');
         SELECT auction, price, _timestamp FROM bids;"
    )
}

/// Starts the bench query with `sink`.
fn start(sql: &str, sink: Box<dyn Sink>) -> Result<eddy::JobHandle, String> {
    let script = eddy::plan_script(sql).map_err(|e| format!("plan: {e}"))?;
    let plan = script.queries.first().ok_or("the script has no query")?;
    let options = RunOptions {
        partitions: 1,
        ..Default::default()
    };
    let spec = eddy::JobSpec::new("bench", plan.clone())
        .options(options)
        .sink(sink);
    eddy::JobManager::new()
        .submit(spec)
        .map_err(|e| format!("start: {e}"))
}

/// Counts the rows it is given.
#[derive(Clone, Default)]
struct CountSink {
    rows: Arc<AtomicU64>,
}

impl Sink for CountSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        self.rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

/// Messages per second one tier reads the throughput topic at (bounded run).
fn tier_rate(addr: &str, topic: &str, tier: &str, group: &str) -> Result<f64, String> {
    let sink = CountSink::default();
    let query = start(
        &tier_sql(addr, topic, tier, group, true),
        Box::new(sink.clone()),
    )?;
    let deadline = Instant::now() + RUN_TIMEOUT;
    while !query.is_finished() {
        if Instant::now() > deadline {
            eprintln!("{tier}: not finished after {RUN_TIMEOUT:?}; stopping it");
            query.stop();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = query.wait().map_err(|e| format!("run: {e}"))?;
    let rows = sink.rows.load(Ordering::Relaxed);
    if stats.records_in != MESSAGES as u64 || rows != MESSAGES as u64 {
        return Err(format!(
            "records_in = {}, sink rows = {rows}, expected {MESSAGES} (run not counted)",
            stats.records_in
        ));
    }
    Ok(stats.rate())
}

/// The tier's consume + decode rate alone: the source of the bench query
/// opened by itself and polled to the end, no operators after it.
fn source_rate(addr: &str, topic: &str, tier: &str, group: &str) -> Result<f64, String> {
    let script = eddy::plan_script(&tier_sql(addr, topic, tier, group, true))
        .map_err(|e| format!("plan: {e}"))?;
    let def = &script.queries[0].source;
    let ctx = eddy::connectors::SourceContext::new(8192);
    let mut source = eddy::connectors::open_source(def, &ctx).map_err(|e| format!("open: {e}"))?;
    let start = Instant::now();
    let mut rows = 0usize;
    let mut first: Option<Duration> = None;
    loop {
        match source.poll().map_err(|e| format!("poll: {e}"))? {
            eddy::connectors::SourceEvent::Batch(b) => {
                first.get_or_insert_with(|| start.elapsed());
                rows += b.num_rows();
            }
            eddy::connectors::SourceEvent::Idle => {}
            eddy::connectors::SourceEvent::End => break,
        }
        if start.elapsed() > RUN_TIMEOUT {
            return Err(format!("source: only {rows} rows after {RUN_TIMEOUT:?}"));
        }
    }
    let elapsed = start.elapsed();
    if rows != MESSAGES {
        return Err(format!("source: {rows} rows, expected {MESSAGES}"));
    }
    // the broker's pace shows in how long its first answer takes (see the raw runs)
    eprintln!(
        "  ({tier} source: first batch after {} ms)",
        first.unwrap_or_default().as_millis()
    );
    Ok(rows as f64 / elapsed.as_secs_f64())
}

/// Records, per row, how long ago its Kafka timestamp was.
#[derive(Clone, Default)]
struct LatencySink {
    rows: Arc<AtomicU64>,
    latencies_ms: Arc<Mutex<Vec<i64>>>,
}

impl Sink for LatencySink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        let now = now_ms();
        let bad = |message: &str| ConnectorError::Config {
            stream: "kafka_tiers latency sink".into(),
            message: message.into(),
        };
        let ts = batch
            .column_by_name("_timestamp")
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
            .ok_or_else(|| bad("no TIMESTAMP column '_timestamp' in the output"))?;
        self.latencies_ms
            .lock()
            .map_err(|_| bad("latency buffer poisoned"))?
            .extend(ts.iter().flatten().map(|t| now - t));
        self.rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

/// Sends `LATENCY_RATE` msg/s for `LATENCY_SECS` s in bursts, each message
/// stamped with its send time; returns how many were acknowledged.
fn produce_steady(addr: &str, topic: &str) -> Result<usize, String> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("linger.ms", "0")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .map_err(|e| format!("latency producer: {e}"))?;
    let per_burst = LATENCY_RATE * BURST_EVERY.as_millis() as usize / 1000;
    let bursts = LATENCY_SECS * 1000 / BURST_EVERY.as_millis() as usize;
    let start = Instant::now();
    let mut i = 0u64;
    for b in 0..bursts {
        let due = start + BURST_EVERY * b as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for _ in 0..per_burst {
            let ts = now_ms();
            let value = bid_json(i, ts);
            let mut record = BaseRecord::<str, str>::to(topic)
                .partition((i % PARTITIONS as u64) as i32)
                .timestamp(ts)
                .payload(value.as_str());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(1));
                    }
                }
            }
            i += 1;
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| format!("latency producer: flush: {e}"))?;
    Ok(i as usize)
}

/// One latency measurement.
#[derive(Debug, Clone, Copy)]
struct Latency {
    p50_ms: f64,
    p99_ms: f64,
}

/// The `q` quantile (nearest rank) of sorted values.
fn quantile(sorted: &[i64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

/// Produce-to-emit latency of one tier, unbounded from the latest offsets.
fn tier_latency(addr: &str, topic: &str, tier: &str, group: &str) -> Result<Latency, String> {
    let sink = LatencySink::default();
    let query = start(
        &tier_sql(addr, topic, tier, group, false),
        Box::new(sink.clone()),
    )?;
    std::thread::sleep(LATENCY_WARMUP);
    let producer = {
        let (addr, topic) = (addr.to_string(), topic.to_string());
        std::thread::spawn(move || produce_steady(&addr, &topic))
    };
    let sent = producer
        .join()
        .map_err(|_| "latency producer panicked".to_string())
        .and_then(|r| r);
    let sent = match sent {
        Ok(n) => n,
        Err(e) => {
            query.stop();
            let _ = query.wait();
            return Err(e);
        }
    };
    let deadline = Instant::now() + LATENCY_DRAIN;
    while sink.rows.load(Ordering::Relaxed) < sent as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    query.stop();
    query.wait().map_err(|e| format!("run: {e}"))?;
    let mut latencies = std::mem::take(
        &mut *sink
            .latencies_ms
            .lock()
            .map_err(|_| "latency buffer poisoned")?,
    );
    if latencies.len() != sent {
        println!(
            "ERROR: {tier} latency: the sink saw {} rows of the {sent} produced",
            latencies.len()
        );
    }
    if latencies.is_empty() {
        return Err("no rows reached the sink".into());
    }
    latencies.sort_unstable();
    Ok(Latency {
        p50_ms: quantile(&latencies, 0.50),
        p99_ms: quantile(&latencies, 0.99),
    })
}

// ---------------------------------------------------------------- report

/// The median of the values (mean of the middle two for an even count).
fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// `1234567.8` → `1,234,568`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cell(x: Option<f64>, show: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "failed".to_string(), show)
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "n/a (failed runs)",
    }
}

fn nproc() -> String {
    Command::new("nproc")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or("?".into(), |n| n.to_string())
        })
}

/// Everything measured, one entry per run.
#[derive(Default)]
struct Results {
    raw: Vec<f64>,
    rate: [Vec<f64>; 4],
    /// Each tier's rate over the raw rate measured just before it.
    vs_raw: [Vec<f64>; 4],
    /// The source alone (consume + decode), and over the raw rate before it.
    source: [Vec<f64>; 4],
    source_vs_raw: [Vec<f64>; 4],
    p50: [Vec<f64>; 4],
    p99: [Vec<f64>; 4],
}

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`: too long for a test
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("kafka_tiers: skipped (run it with `cargo bench --bench kafka_tiers`)");
        return;
    }
    let runs: usize = match std::env::var("EDDY_BENCH_RUNS") {
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .expect("EDDY_BENCH_RUNS must be a positive integer"),
        Err(_) => 3,
    };
    let broker = BrokerProcess::find_or_start();
    let addr = broker.addr.clone();
    let admin = Broker::External(addr.clone());
    let id = format!("{}-{}", std::process::id(), now_ms());

    let topic = topic_name("eddy-bench-tiers");
    admin.create_topic(&topic, PARTITIONS);
    let (produce_time, mean_bytes) = produce_million(&addr, &topic);
    println!(
        "produced {} messages of {mean_bytes:.0} bytes on average to {topic} ({PARTITIONS} partitions) in {:.2} s ({} msg/s)",
        thousands(MESSAGES as f64),
        produce_time.as_secs_f64(),
        thousands(MESSAGES as f64 / produce_time.as_secs_f64()),
    );
    let mut r = Results::default();
    // The broker's own pace swings between runs (it rewrites its data file
    // now and then), so every tier is measured right after a raw run and
    // compared with that one: the ratio is the median of those pairs.
    for run in 1..=runs {
        println!("throughput, run {run}/{runs}:");
        for (t, tier) in TIERS.iter().enumerate() {
            std::thread::sleep(SETTLE);
            let raw = match raw_rate(&addr, &topic, &format!("eddy-bench-raw-{id}-{run}-{t}")) {
                Ok(raw) => {
                    println!(
                        "  raw librdkafka  {:>11} msg/s (first message after {} ms)",
                        thousands(raw.rate),
                        raw.first.as_millis()
                    );
                    r.raw.push(raw.rate);
                    Some(raw.rate)
                }
                Err(e) => {
                    println!("ERROR: raw: {e}");
                    None
                }
            };
            std::thread::sleep(SETTLE);
            let group = format!("eddy-bench-{tier}-source-{id}-{run}");
            match source_rate(&addr, &topic, tier, &group) {
                Ok(rate) => {
                    println!(
                        "  {tier:<15} {:>11} msg/s consumed + decoded",
                        thousands(rate)
                    );
                    r.source[t].push(rate);
                    if let Some(raw) = raw {
                        r.source_vs_raw[t].push(rate / raw);
                    }
                }
                Err(e) => println!("ERROR: {tier} source: {e}"),
            }
            let group = format!("eddy-bench-{tier}-{id}-{run}");
            std::thread::sleep(SETTLE);
            match tier_rate(&addr, &topic, tier, &group) {
                Ok(rate) => {
                    println!(
                        "  {tier:<15} {:>11} msg/s through the whole query",
                        thousands(rate)
                    );
                    r.rate[t].push(rate);
                    if let Some(raw) = raw {
                        r.vs_raw[t].push(rate / raw);
                    }
                }
                Err(e) => println!("ERROR: {tier}: {e}"),
            }
        }
    }
    // the latency runs on a broker that holds little (see `delete_topic`)
    delete_topic(&addr, &topic);
    for run in 1..=runs {
        println!("latency, run {run}/{runs}:");
        for (t, tier) in TIERS.iter().enumerate() {
            let latency_topic = topic_name(&format!("eddy-bench-latency-{tier}"));
            admin.create_topic(&latency_topic, PARTITIONS);
            let group = format!("eddy-bench-{tier}-latency-{id}-{run}");
            match tier_latency(&addr, &latency_topic, tier, &group) {
                Ok(l) => {
                    println!(
                        "  {tier:<15} p50 {:>4.0} ms, p99 {:>4.0} ms",
                        l.p50_ms, l.p99_ms
                    );
                    r.p50[t].push(l.p50_ms);
                    r.p99[t].push(l.p99_ms);
                }
                Err(e) => println!("ERROR: {tier} latency: {e}"),
            }
            delete_topic(&addr, &latency_topic);
        }
    }
    report(&r, runs, &broker, mean_bytes, produce_time);
}

fn report(r: &Results, runs: usize, broker: &BrokerProcess, mean_bytes: f64, produce: Duration) {
    let raw = median(&r.raw);
    let rate: Vec<Option<f64>> = r.rate.iter().map(|v| median(v)).collect();
    let ms = |x: f64| format!("{x:.0}");
    let now = eddy::types::format_timestamp_ms(now_ms());
    println!();
    println!("## Kafka consumer tiers");
    println!();
    println!(
        "{now}, nproc {}, broker {}; {} JSON messages of ~{mean_bytes:.0} bytes on {PARTITIONS} partitions \
         (produced in {:.2} s); latency at {} msg/s for {LATENCY_SECS} s; median of {runs} run(s).",
        nproc(),
        broker.describe(),
        thousands(MESSAGES as f64),
        produce.as_secs_f64(),
        thousands(LATENCY_RATE as f64),
    );
    println!();
    let env: String = [BROKER_ENV, "EDDY_BENCH_RUNS"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v} ")))
        .collect();
    println!("Command: `{env}cargo bench --bench kafka_tiers`");
    println!();
    println!(
        "| tier | consume + decode msg/s | vs raw | whole query msg/s | vs raw | p50 ms | p99 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let lo = r.raw.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = r.raw.iter().copied().fold(0.0, f64::max);
    println!(
        "| raw librdkafka (BaseConsumer), median of {} ({}–{}) | {} | 100% | – | – | – | – |",
        r.raw.len(),
        thousands(lo),
        thousands(hi),
        cell(raw, thousands)
    );
    for (t, tier) in TIERS.iter().enumerate() {
        let pct = |v: &[f64]| median(v).map_or("–".into(), |v| format!("{:.0}%", 100.0 * v));
        let vs = pct(&r.vs_raw[t]);
        let source_vs = pct(&r.source_vs_raw[t]);
        println!(
            "| {tier} | {} | {source_vs} | {} | {vs} | {} | {} |",
            cell(median(&r.source[t]), thousands),
            cell(rate[t], thousands),
            cell(median(&r.p50[t]), ms),
            cell(median(&r.p99[t]), ms),
        );
    }
    let (standard, buffered, dedicated) = (rate[0], rate[1], rate[2]);
    let at_least = |x: Option<f64>, min: f64| x.map(|x| (x >= min, thousands(x)));
    let ahead = |a: Option<f64>, b: Option<f64>| {
        a.zip(b)
            .map(|(a, b)| (a > b, format!("{:.1}x", a / b.max(1.0))))
    };
    let checks = [
        (
            "dedicated consumes + decodes at >= 80% of raw",
            median(&r.source_vs_raw[2]).map(|v| (v >= 0.8, format!("{:.0}%", 100.0 * v))),
        ),
        ("dedicated >= 300K msg/s", at_least(dedicated, 300_000.0)),
        ("standard >= 10K msg/s", at_least(standard, 10_000.0)),
        ("buffered >= 50K msg/s", at_least(buffered, 50_000.0)),
        ("dedicated >= 100K msg/s", at_least(dedicated, 100_000.0)),
        ("buffered ahead of standard", ahead(buffered, standard)),
        ("dedicated ahead of standard", ahead(dedicated, standard)),
    ];
    println!();
    println!("Targets:");
    for (name, check) in checks {
        match check {
            Some((ok, value)) => println!("- {name}: {} ({value})", verdict(Some(ok))),
            None => println!("- {name}: {}", verdict(None)),
        }
    }
}
