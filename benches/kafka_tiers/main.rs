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
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::TimestampMillisecondType;
use arrow::record_batch::RecordBatch;
use eddy::connectors::Sink;
use eddy::{ConnectorError, RunOptions};
use eddy_suite::broker_process::BrokerProcess;
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

mod broker;
mod measure;

use broker::*;
use measure::*;

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
    /// The dedicated tier's whole query on two workers and two decoding
    /// threads, and over the one-thread run just before it.
    parallel: Vec<f64>,
    parallel_vs_one: Vec<f64>,
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
            let one = match tier_rate(&addr, &topic, tier, &group, 1) {
                Ok(rate) => {
                    println!(
                        "  {tier:<15} {:>11} msg/s through the whole query",
                        thousands(rate)
                    );
                    r.rate[t].push(rate);
                    if let Some(raw) = raw {
                        r.vs_raw[t].push(rate / raw);
                    }
                    Some(rate)
                }
                Err(e) => {
                    println!("ERROR: {tier}: {e}");
                    None
                }
            };
            if *tier == "dedicated" {
                // polled batches decoded on two threads (`--partitions 2`)
                std::thread::sleep(SETTLE);
                let group = format!("eddy-bench-{tier}-p2-{id}-{run}");
                match tier_rate(&addr, &topic, tier, &group, 2) {
                    Ok(rate) => {
                        println!(
                            "  {tier} ×2     {:>11} msg/s through the whole query, --partitions 2",
                            thousands(rate)
                        );
                        r.parallel.push(rate);
                        if let Some(one) = one {
                            r.parallel_vs_one.push(rate / one);
                        }
                    }
                    Err(e) => println!("ERROR: {tier} --partitions 2: {e}"),
                }
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
    println!(
        "| dedicated, `--partitions 2` (two decoding threads) | – | – | {} | {} vs one thread | – | – |",
        cell(median(&r.parallel), thousands),
        median(&r.parallel_vs_one).map_or("–".into(), |v| format!("{v:.2}x")),
    );
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
