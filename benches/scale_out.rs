//! Scale-out (docs/scale-out.md): the same windowed aggregate over a Kafka
//! topic run by one `eddy` process with the in-process exchange, and by 1,
//! 2 and 3 `eddy --instance-id` processes that cross the repartition topic.
//!
//! 1. Produces `EDDY_BENCH_ROWS` (default 1,000,000) JSON bids to a fresh
//!    6-partition topic, partitioned by bidder (the query groups by
//!    auction, so with instances every row crosses the repartition topic).
//! 2. Each case runs the query bounded (`scan.bounded.mode =
//!    'latest-offset'`) to its end: a 10 s tumbling COUNT and SUM per
//!    auction, JSON lines on stdout into a file, checkpoints every second
//!    into a fresh directory (instances need them; the single process takes
//!    them too, so the cases differ by the hop alone). Time: from the first
//!    process's start until the last one exits, startup and group joins
//!    included; CPU: the processes' user + system time. Each case's output
//!    must hold exactly the (window, auction) groups the bench computes
//!    itself, or the case fails.
//! 3. Each case also runs over an empty topic of the same shape: what
//!    starting, joining the groups and finishing cost on their own; the
//!    rate beyond it is rows / (wall time − that).
//! 4. Runs every case `EDDY_BENCH_RUNS` times (default 3), in a different
//!    order each run, and prints the medians as a markdown table.
//!
//! Run: `cargo bench --bench scale_out` (it builds the release `eddy`
//! binary first). The broker is the one at `EDDY_TEST_KAFKA`, or one
//! started with `scripts/kafka-broker.sh` and stopped at the end.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use eddy_suite::broker_process::BrokerProcess;
use eddy_suite::kafka::{Broker, produce_to, topic_name};

const PARTITIONS: i32 = 6;
/// `date_time` of the first bid; bids are 1 ms apart.
const BASE_TIME_MS: i64 = 1_767_225_600_000;
const AUCTIONS: u64 = 1_000;
const WINDOW_MS: i64 = 10_000;
/// How long a case may take before it counts as failed.
const CASE_TIMEOUT: Duration = Duration::from_secs(600);

/// A deterministic 64-bit mix of `i` (splitmix64).
fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Bid `i`: (auction, bidder, price).
fn bid(i: u64) -> (u64, u64, u64) {
    let x = mix(i);
    (x % AUCTIONS, (x >> 20) % 100_000, 1 + (x >> 40) % 1_000)
}

/// Produces the input; returns the (window start, auction) groups it holds.
fn produce(addr: &str, topic: &str, rows: u64) -> BTreeSet<(i64, u64)> {
    let mut groups = BTreeSet::new();
    for chunk in (0..rows).step_by(100_000) {
        let records: Vec<(i32, Option<String>, Option<String>)> = (chunk
            ..(chunk + 100_000).min(rows))
            .map(|i| {
                let (auction, bidder, price) = bid(i);
                let t = BASE_TIME_MS + i as i64;
                groups.insert((t - t.rem_euclid(WINDOW_MS), auction));
                let json = format!(
                    r#"{{"auction":{auction},"bidder":{bidder},"price":{price},"date_time":{t}}}"#
                );
                ((bidder % PARTITIONS as u64) as i32, None, Some(json))
            })
            .collect();
        produce_to(addr, topic, &records);
    }
    groups
}

fn script(addr: &str, topic: &str) -> String {
    format!(
        "CREATE STREAM bids (auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP,
           WATERMARK FOR date_time AS date_time - INTERVAL '3' SECOND)
         WITH (connector = 'kafka', topic = '{topic}', 'properties.bootstrap.servers' = '{addr}',
               'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset',
               'properties.receive.message.max.bytes' = '1000000000');
         SELECT auction, window_start, COUNT(*) AS n, SUM(price) AS total
         FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
         GROUP BY auction, window_start, window_end;"
    )
}

/// The release `eddy` binary, built now.
fn eddy_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "eddy", "--bin", "eddy"])
        .status()
        .expect("cargo build");
    assert!(status.success(), "building eddy failed");
    // this bench runs from <target>/release/deps/
    let exe = std::env::current_exe().expect("bench path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("eddy");
    assert!(bin.exists(), "{} not found", bin.display());
    bin
}

/// The user + system CPU time of this process's waited-for children so far
/// (`/proc/self/stat` fields 16 and 17, in clock ticks of 10 ms).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, a)| a);
    let f: Vec<u64> = after.split(' ').map(|x| x.parse().unwrap_or(0)).collect();
    // fields after the command: state is field 3, so cutime (16) is index 13
    let ticks = f.get(13).copied().unwrap_or(0) + f.get(14).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

struct Measured {
    wall: Duration,
    cpu: Duration,
}

/// Deletes a case's repartition topic: the broker keeps every record in
/// memory, and the next case should not pay for this one's.
fn delete_topic(addr: &str, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: Result<AdminClient<DefaultClientContext>, _> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create();
    let Ok(admin) = admin else { return };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    if let Err(e) = rt.block_on(admin.delete_topics(&[topic], &options)) {
        eprintln!("could not delete {topic}: {e}");
    }
}

/// Runs one case: `instances` processes (0: one process without
/// `--instance-id`), each writing its output to a file in `dir`.
fn run_case(
    (eddy, addr): (&Path, &str),
    dir: &Path,
    instances: usize,
    want: &BTreeSet<(i64, u64)>,
) -> Result<Measured, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let app = format!("bench{}", topic_name("s").replace('-', ""));
    let cpu_before = children_cpu();
    let started = Instant::now();
    let spawn = |k: Option<usize>| -> Result<Child, String> {
        let name = k.map_or("single".to_string(), |k| format!("instance-{k}"));
        let out =
            std::fs::File::create(dir.join(format!("{name}.out"))).map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
        let mut args: Vec<String> = ["run", "q.sql", "--checkpoint-dir", "chk"]
            .into_iter()
            .chain(["--checkpoint-interval", "1s", "--quiet"])
            .map(str::to_string)
            .collect();
        match k {
            Some(k) => args.extend([
                "--partitions".into(),
                "1".into(),
                "--instance-id".into(),
                k.to_string(),
                "--app-id".into(),
                app.clone(),
            ]),
            None => args.extend(["--partitions".into(), "2".into()]),
        }
        Command::new(eddy)
            .args(&args)
            .current_dir(dir)
            .stdout(out)
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())
    };
    let mut children = Vec::new();
    if instances == 0 {
        children.push(spawn(None)?);
    } else {
        for k in 0..instances {
            children.push(spawn(Some(k))?);
        }
    }
    for c in &mut children {
        loop {
            if let Some(status) = c.try_wait().map_err(|e| e.to_string())? {
                if !status.success() {
                    return Err(format!("a process ended {status}; see {}", dir.display()));
                }
                break;
            }
            if started.elapsed() > CASE_TIMEOUT {
                for c in &mut children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(format!("not done in {CASE_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let wall = started.elapsed();
    let cpu = children_cpu().saturating_sub(cpu_before);
    // every group once
    let mut got = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "out") {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            for line in text.lines() {
                let v: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| format!("{line}: {e}"))?;
                let w = v["window_start"].as_str().unwrap_or_default().to_string();
                got.push((w, v["auction"].as_u64().unwrap_or(u64::MAX)));
            }
        }
    }
    let distinct: BTreeSet<_> = got.iter().cloned().collect();
    if got.len() != want.len() || distinct.len() != want.len() {
        return Err(format!(
            "{} rows ({} distinct groups) written, {} groups expected; see {}",
            got.len(),
            distinct.len(),
            want.len(),
            dir.display()
        ));
    }
    if instances > 0 {
        delete_topic(addr, &format!("eddy.{app}.repartition"));
    }
    Ok(Measured { wall, cpu })
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (n > 0).then(|| {
        if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        }
    })
}

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`: too long for a test
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("scale_out: skipped (run it with `cargo bench --bench scale_out`)");
        return;
    }
    let env_number = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let runs = env_number("EDDY_BENCH_RUNS", 3) as usize;
    let rows = env_number("EDDY_BENCH_ROWS", 1_000_000);
    let eddy = eddy_binary();
    let broker = BrokerProcess::find_or_start();
    let addr = broker.addr.clone();
    let topic = topic_name("eddy-bench-scale");
    Broker::External(addr.clone()).create_topic(&topic, PARTITIONS);
    let produced = Instant::now();
    let want = produce(&addr, &topic, rows);
    println!(
        "produced {rows} bids to {topic} ({PARTITIONS} partitions, by bidder) in {:.1} s; {} (window, auction) groups",
        produced.elapsed().as_secs_f64(),
        want.len()
    );
    // the same query over an empty topic: what starting, joining the
    // groups and finishing cost, whatever the input
    let empty = topic_name("eddy-bench-scale-empty");
    Broker::External(addr.clone()).create_topic(&empty, PARTITIONS);
    let root = tempfile::tempdir().expect("temp dir");
    let cases: [(usize, &str); 4] = [
        (0, "one process, in-process exchange (--partitions 2)"),
        (1, "1 instance, repartition topic"),
        (2, "2 instances"),
        (3, "3 instances"),
    ];
    let n = cases.len();
    let (mut walls, mut cpus, mut fixed, mut ratios) = (
        vec![vec![]; n],
        vec![vec![]; n],
        vec![vec![]; n],
        vec![vec![]; n],
    );
    let nothing = BTreeSet::new();
    for run in 0..runs {
        let mut order: Vec<usize> = (0..n).collect();
        order.rotate_left(run % n);
        let mut this_run = vec![None; n];
        for c in order {
            let (instances, what) = cases[c];
            let measure = |input: &str, want: &BTreeSet<(i64, u64)>| {
                let dir = root.path().join(format!("run{run}-case{c}-{input}"));
                std::fs::create_dir_all(&dir).expect("case dir");
                std::fs::write(dir.join("q.sql"), script(&addr, input)).expect("script");
                let m = run_case((&eddy, &addr), &dir, instances, want);
                if m.is_ok() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                m
            };
            match (measure(&empty, &nothing), measure(&topic, &want)) {
                (Ok(e), Ok(m)) => {
                    println!(
                        "run {}/{runs}: {what}: {:.2} s ({:.2} s with no input), {:.0} rec/s, CPU {:.2} s ({:.2} s)",
                        run + 1,
                        m.wall.as_secs_f64(),
                        e.wall.as_secs_f64(),
                        rows as f64 / m.wall.as_secs_f64(),
                        m.cpu.as_secs_f64(),
                        e.cpu.as_secs_f64(),
                    );
                    walls[c].push(m.wall.as_secs_f64());
                    cpus[c].push(m.cpu.as_secs_f64());
                    fixed[c].push(e.wall.as_secs_f64());
                    this_run[c] = Some(m.wall.as_secs_f64());
                }
                (e, m) => println!(
                    "run {}/{runs}: {what}: FAILED: {:?} {:?}",
                    run + 1,
                    e.err(),
                    m.err()
                ),
            }
        }
        if let Some(base) = this_run[0] {
            for (c, w) in this_run.iter().enumerate() {
                if let Some(w) = w {
                    ratios[c].push(base / w);
                }
            }
        }
    }
    println!(
        "\n{rows} bids, {PARTITIONS} partitions, medians of {runs} runs ({} cores)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| case | wall time | rec/s | wall time, no input | rec/s beyond it | CPU time | CPU µs/row | speed vs one process (same run) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (c, (_, what)) in cases.iter().enumerate() {
        let (w, f, cpu, r) = (
            median(&mut walls[c]),
            median(&mut fixed[c]),
            median(&mut cpus[c]),
            median(&mut ratios[c]),
        );
        match (w, f, cpu) {
            (Some(w), Some(f), Some(cpu)) => println!(
                "| {what} | {w:.2} s | {:.0} | {f:.2} s | {:.0} | {cpu:.2} s | {:.2} | {} |",
                rows as f64 / w,
                rows as f64 / (w - f).max(1e-3),
                cpu * 1e6 / rows as f64,
                r.map_or("–".into(), |r| format!("{r:.2}×"))
            ),
            _ => println!("| {what} | failed | | | | | | |"),
        }
    }
    drop(broker);
}
