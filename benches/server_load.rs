//! Load check of `eddy serve` (issue 11): 8 queries at once over the
//! Nexmark generator through the server, each with an SSE client attached
//! that reads every row (encoded as JSON), against the same 8 queries
//! submitted to one `JobManager` in the same process with their rows
//! encoded into a file sink (what `eddy run` does with an 8-query script);
//! and again with clients that connect and never read. Prints the combined rates and the
//! ratios; the figures go into docs/benchmarks.md.
//!
//! Run: `cargo bench --bench server_load` (`EDDY_BENCH_EVENTS` events per
//! query, default 1,000,000; `EDDY_BENCH_RUNS` rounds, default 3).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use eddy::server::{ServeOptions, Server};
use eddy_suite::http::request;
use serde_json::json;

const QUERIES: usize = 8;
const TOKEN: &str = "00000000000000000000000000000001";

fn sql(i: usize, events: u64) -> String {
    format!(
        "CREATE STREAM bids (auction BIGINT, price BIGINT, date_time TIMESTAMP,
           WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
         WITH (connector = 'nexmark', events = '{events}', seed = '{i}');
         SELECT auction, window_start, COUNT(*) AS n, MAX(price) AS top
         FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
         GROUP BY auction, window_start, window_end"
    )
}

/// The 8 queries on one `JobManager` as `eddy run` runs a script of them,
/// their rows encoded as JSON lines into a file sink (`/dev/null`), as the
/// server encodes them for its clients: records per second, all together.
fn in_process(events: u64) -> f64 {
    let manager = eddy::JobManager::new();
    let start = Instant::now();
    for i in 0..QUERIES {
        let script = eddy::plan_script(&format!(
            "CREATE STREAM out WITH (connector = 'file', path = '/dev/null');
             {}",
            sql(i, events).replace("SELECT auction,", "INSERT INTO out SELECT auction,")
        ))
        .expect("plans");
        let spec = eddy::JobSpec::new(format!("q{i}"), script.queries[0].clone());
        manager.submit(spec).expect("starts");
    }
    assert!(manager.wait_all(Duration::from_secs(600)));
    (QUERIES as u64 * events) as f64 / start.elapsed().as_secs_f64()
}

/// A client of a query's events: reads them all, or none.
fn client(addr: std::net::SocketAddr, name: &str, reads: bool) -> std::thread::JoinHandle<()> {
    let name = name.to_string();
    std::thread::spawn(move || {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return;
        };
        let _ = write!(
            s,
            "GET /api/queries/{name}/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        );
        if reads {
            for line in BufReader::new(s).lines() {
                if line.is_err() {
                    break;
                }
            }
        } else {
            // connected, never read: the server must not wait for it
            std::thread::sleep(Duration::from_secs(120));
        }
    })
}

/// The 8 queries through the server, each with a client: records per second.
fn through_server(events: u64, clients_read: bool) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = ServeOptions::new(dir.path().to_path_buf());
    o.listen = "127.0.0.1:0".parse().expect("addr");
    o.token = Some(TOKEN.into());
    o.partitions = 1;
    let server = Server::start(o).expect("starts");
    let addr = server.addr();
    let auth = ("Authorization", "Bearer 00000000000000000000000000000001");
    let start = Instant::now();
    let mut threads = Vec::new();
    for i in 0..QUERIES {
        let body = json!({"name": format!("q{i}"), "sql": sql(i, events)}).to_string();
        let r = request(
            addr,
            "POST",
            "/api/queries",
            &[auth, ("Content-Type", "application/json")],
            Some(body.as_bytes()),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        threads.push(client(addr, &format!("q{i}"), clients_read));
    }
    loop {
        let list = request(addr, "GET", "/api/queries", &[auth], None).json();
        let done = list
            .as_array()
            .expect("a list")
            .iter()
            .all(|q| q["status"] != "running" && q["status"] != "stopping");
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rate = (QUERIES as u64 * events) as f64 / start.elapsed().as_secs_f64();
    server.shutdown(Duration::from_secs(10));
    drop(threads);
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("server_load: skipped (run it with `cargo bench --bench server_load`)");
        return;
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let events = env("EDDY_BENCH_EVENTS", 1_000_000);
    let runs = env("EDDY_BENCH_RUNS", 3).max(1);
    let (mut base, mut served, mut stalled) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let b = in_process(events);
        let s = through_server(events, true);
        let t = through_server(events, false);
        println!(
            "run {run}: in process {:.2} M rec/s, server with reading clients {:.2} M ({:.0}%), with stalled clients {:.2} M ({:.0}%)",
            b / 1e6,
            s / 1e6,
            100.0 * s / b,
            t / 1e6,
            100.0 * t / b
        );
        base.push(b);
        served.push(s);
        stalled.push(t);
    }
    let (b, s, t) = (median(base), median(served), median(stalled));
    println!();
    println!(
        "| {QUERIES} queries × {events} events | combined rec/s (median of {runs}) | vs in process |"
    );
    println!("| --- | --- | --- |");
    println!(
        "| one JobManager, in process (as `eddy run`) | {:.2} M | 100% |",
        b / 1e6
    );
    println!(
        "| `eddy serve`, a reading SSE client per query | {:.2} M | {:.0}% |",
        s / 1e6,
        100.0 * s / b
    );
    println!(
        "| `eddy serve`, an SSE client per query that never reads | {:.2} M | {:.0}% |",
        t / 1e6,
        100.0 * t / b
    );
    println!();
    println!(
        "targets: server ≥ 85% of in process: {}; stalled clients cost ≤ 5%: {}",
        if s >= 0.85 * b { "PASS" } else { "FAIL" },
        if t >= 0.95 * s { "PASS" } else { "FAIL" }
    );
}
