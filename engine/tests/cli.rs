//! The `eddy` binary as a user runs it: run, explain, check, and the exit
//! codes and messages of mistakes.

use std::path::Path;
use std::process::{Command, Output};

fn eddy(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("eddy runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const INPUT: &str = "{\"k\":\"a\",\"v\":1,\"t\":\"2026-01-01T00:00:01Z\"}\n\
                     {\"k\":\"b\",\"v\":2,\"t\":\"2026-01-01T00:00:02Z\"}\n\
                     not json\n\
                     {\"k\":\"a\",\"v\":3,\"t\":\"2026-01-01T00:00:12Z\"}\n";

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("in.jsonl"), INPUT).expect("write input");
    std::fs::write(
        dir.path().join("q.sql"),
        "CREATE STREAM s (k VARCHAR, v BIGINT, t TIMESTAMP, WATERMARK FOR t AS t - INTERVAL '1' SECOND)
           WITH (connector = 'file', path = 'in.jsonl', 'format.on_error' = 'skip');
         CREATE STREAM out WITH (connector = 'file', path = 'out.csv', format = 'csv');
         INSERT INTO out SELECT k, window_start, SUM(v) AS total
         FROM TUMBLE(s, t, INTERVAL '10' SECOND) GROUP BY k, window_start, window_end;",
    )
    .expect("write query");
    dir
}

#[test]
fn run_writes_the_sink_and_prints_stats() {
    let dir = setup();
    let out = eddy(&["run", "q.sql", "--stats"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("query 1: 3 records in, 3 out, 0 too late (0 dead-lettered)"),
        "{stderr}"
    );
    assert!(stderr.contains("1 malformed;"), "{stderr}");
    let csv = std::fs::read_to_string(dir.path().join("out.csv")).expect("sink file");
    // partition workers (one per core) emit in any order between keys
    let mut lines: Vec<&str> = csv.lines().collect();
    lines[1..].sort_unstable();
    assert_eq!(
        lines,
        [
            "k,window_start,total",
            "a,2026-01-01T00:00:00Z,1",
            "a,2026-01-01T00:00:10Z,3",
            "b,2026-01-01T00:00:00Z,2"
        ]
    );
}

#[test]
fn bare_select_prints_json_lines() {
    let dir = setup();
    std::fs::write(
        dir.path().join("s.sql"),
        "CREATE STREAM s (k VARCHAR, v BIGINT) WITH (connector = 'file', path = 'in.jsonl', 'format.on_error' = 'skip');
         SELECT k, v * 10 AS v10 FROM s WHERE v > 1;",
    )
    .expect("write query");
    let out = eddy(&["run", "s.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"k\":\"b\",\"v10\":20}\n{\"k\":\"a\",\"v10\":30}\n"
    );
}

#[test]
fn explain_and_check() {
    let dir = setup();
    let out = eddy(&["explain", "q.sql"], dir.path());
    assert!(out.status.success());
    let plan = text(&out.stdout);
    assert!(
        plan.starts_with(
            "Sink: name=out, connector=file, format=csv, path=out.csv, delivery=exactly-once with --checkpoint-dir\n"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("    TumblingWindowAggregate: time=t, size=10 SECOND, keys=[k]"),
        "{plan}"
    );
    let out = eddy(&["explain", "--json", "q.sql"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    assert_eq!(json["nodes"][0]["kind"], "Source");
    assert_eq!(json["edges"].as_array().map(Vec::len), Some(5));
    let out = eddy(&["check", "q.sql"], dir.path());
    assert_eq!(
        text(&out.stdout),
        "q.sql: ok (2 streams, 1 queries, 0 explained)\n"
    );
}

/// `explain --scale-out` shows the stages instances run, with the
/// partition counts the broker gives (librdkafka's mock cluster here).
#[test]
fn explain_shows_the_stages_of_a_scaled_out_query() {
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::DefaultProducerContext;
    let mock: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).expect("mock cluster");
    mock.create_topic("bids", 4, 1).expect("topic");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("q.sql"),
        format!(
            "CREATE STREAM bids (auction BIGINT, price BIGINT, date_time TIMESTAMP,
               WATERMARK FOR date_time AS date_time - INTERVAL '3' SECOND)
             WITH (connector = 'kafka', topic = 'bids', 'properties.bootstrap.servers' = '{}');
             SELECT auction, window_start, COUNT(*) AS n
             FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) WHERE price > 10
             GROUP BY auction, window_start, window_end;",
            mock.bootstrap_servers()
        ),
    )
    .expect("write query");
    let out = eddy(
        &["explain", "q.sql", "--scale-out", "--app-id", "b"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    for line in [
        "Scale-out of 'b' (eddy run --instance-id K --app-id b): 2 stages\n",
        "  Stage 1: group 'eddy.b.s1' over topic 'bids' (4 partitions); a task per partition, 'b.s1.<topic>.p<partition>'\n",
        "    Sink: name=eddy.b.repartition, connector=repartition, partitions=4\n",
        "      Filter: predicate=(price > 10)\n",
        // stdout is at-least-once: so is the hop
        "  Repartition topic 'eddy.b.repartition' (4 partitions (the source's), created by the first instance): keyed by [auction], at-least-once (the query's output is at-least-once)\n",
        "  Stage 2: group 'eddy.b.s2' over topic 'eddy.b.repartition'; a task per partition, 'b.s2.r<partition>'\n",
        "        TumblingWindowAggregate: time=date_time, size=10 SECOND, keys=[auction]",
    ] {
        assert!(plan.contains(line), "no {line:?} in:\n{plan}");
    }
    let out = eddy(&["explain", "q.sql", "--scale-out", "--json"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["query"], "q");
    assert_eq!(json["repartition_topic"]["partitions"], 4);
    assert_eq!(json["stages"][1]["group"], "eddy.q.s2");
    assert_eq!(json["stages"][0]["plan"]["nodes"][0]["kind"], "Source");
    // a source declared partitioned by the grouping key: no hop
    let declared = |columns: &str| {
        let sql = std::fs::read_to_string(dir.path().join("q.sql")).expect("script");
        let sql = sql.replace(
            "topic = 'bids',",
            &format!("topic = 'bids', 'scan.partitioned-by' = '{columns}',"),
        );
        std::fs::write(dir.path().join("co.sql"), sql).expect("write query");
        eddy(
            &["explain", "co.sql", "--scale-out", "--app-id", "c"],
            dir.path(),
        )
    };
    let out = declared("auction");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    for line in [
        "Scale-out of 'c' (eddy run --instance-id K --app-id c): 1 stage, no repartition topic (the source is partitioned by [auction], among the grouping key [auction])\n",
        "  Stage 1: group 'eddy.c.s1' over topic 'bids' (4 partitions); a task per partition runs the whole query, 'c.s1.<topic>.p<partition>'\n",
        "        TumblingWindowAggregate: time=date_time, size=10 SECOND, keys=[auction]",
    ] {
        assert!(plan.contains(line), "no {line:?} in:\n{plan}");
    }
    assert!(!plan.contains("connector=repartition"), "{plan}");
    // declared by a column the query does not group by: refused, and why
    let out = declared("price");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("declared partitioned by [price] ('scan.partitioned-by'), but the query groups by [auction]"),
        "{err}"
    );
    let out = declared("nope");
    assert!(
        text(&out.stderr).contains("names 'nope', which is not one of its columns"),
        "{}",
        text(&out.stderr)
    );
    // a query with no key to spread by says so
    std::fs::write(
        dir.path().join("flat.sql"),
        format!(
            "CREATE STREAM bids (auction BIGINT, price BIGINT)
             WITH (connector = 'kafka', topic = 'bids', 'properties.bootstrap.servers' = '{}');
             SELECT auction FROM bids WHERE price > 10;",
            mock.bootstrap_servers()
        ),
    )
    .expect("write query");
    let out = eddy(&["explain", "flat.sql", "--scale-out"], dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no GROUP BY or PARTITION BY key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn mistakes_exit_non_zero_with_a_clear_message() {
    let dir = setup();
    std::fs::write(
        dir.path().join("bad.sql"),
        "CREATE STREAM s (a BIGINT) WITH (connector = 'file', path = 'x');\nSELECT b FROM s;",
    )
    .expect("write");
    let out = eddy(&["run", "bad.sql"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: in bad.sql: unknown column 'b' at line 2, column 8\nhint: available columns: a\n"
    );
    let out = eddy(&["run", "missing.sql"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("error: cannot read missing.sql"));
    // a malformed line under the default 'fail' policy stops the query with its line number
    std::fs::write(
        dir.path().join("strict.sql"),
        "CREATE STREAM s (k VARCHAR) WITH (connector = 'file', path = 'in.jsonl'); SELECT k FROM s;",
    )
    .expect("write");
    let out = eddy(&["run", "strict.sql"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("in.jsonl: malformed record at line 3"),
        "{}",
        text(&out.stderr)
    );
}

/// Regression: an I/O error was printed three times (the error chain
/// repeated causes the message already contained).
#[test]
fn an_io_error_is_reported_once() {
    let dir = setup();
    std::fs::write(dir.path().join("io.sql"), "CREATE STREAM s (a BIGINT) WITH (connector = 'file', path = 'nope.jsonl'); SELECT a FROM s;")
        .expect("write");
    let out = eddy(&["run", "io.sql"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr
            .starts_with("error: stream 's': cannot open 'nope.jsonl' (check the 'path' option): "),
        "{stderr}"
    );
}

/// `--metrics-addr` serves Prometheus text while a query runs.
#[test]
fn metrics_are_served_while_a_query_runs() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = setup();
    std::fs::write(
        dir.path().join("live.sql"),
        "CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
           WITH (connector = 'nexmark', realtime = 'true', rate = '20000');
         CREATE STREAM out WITH (connector = 'file', path = 'live.jsonl');
         INSERT INTO out SELECT auction, window_start, COUNT(*) AS n
         FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND) GROUP BY auction, window_start, window_end;",
    )
    .expect("write");
    /// Kills the unbounded query however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["run", "live.sql", "--metrics-addr", "127.0.0.1:0"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("eddy starts"),
    );
    let mut stderr = BufReader::new(child.0.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("first stderr line");
    let addr = line
        .trim()
        .strip_prefix("metrics: http://")
        .and_then(|s| s.strip_suffix("/metrics"));
    let addr = addr
        .unwrap_or_else(|| panic!("unexpected: {line}"))
        .to_string();
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        // in two pieces, as slow clients send: the server must wait for the whole head
        s.write_all(b"GET ").expect("send");
        std::thread::sleep(std::time::Duration::from_millis(50));
        s.write_all(format!("{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .expect("send");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read");
        body
    };
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let text = get("/metrics");
    let other = get("/other");
    drop(child);
    assert!(
        other.starts_with("HTTP/1.1 404") && other.contains("only GET /metrics"),
        "{other}"
    );
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    for name in [
        "eddy_source_rows_total{query=\"1\"}",
        "eddy_sink_rows_total{query=\"1\"}",
        "eddy_watermark_lag_milliseconds{query=\"1\"}",
        "eddy_operator_rows_in_total{",
        "eddy_queue_depth{",
        "eddy_batch_latency_seconds_count{query=\"1\"}",
        "eddy_late_rows_total{query=\"1\"}",
    ] {
        assert!(text.contains(name), "missing {name} in:\n{text}");
    }
    let rows: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("eddy_source_rows_total{query=\"1\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        rows > 1000,
        "{rows} rows read after 1.5 s at 20,000 events/s"
    );
}

#[test]
fn a_bad_metrics_address_is_a_clear_error() {
    let dir = setup();
    let out = eddy(
        &["run", "q.sql", "--metrics-addr", "not-an-address"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: cannot serve metrics on 'not-an-address'"),
        "{}",
        text(&out.stderr)
    );
}

#[path = "../../tests/support/lib.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod served;
use served::Served;

#[test]
fn udf_register_list_use_and_remove() {
    let dir = setup();
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    let geo = support::udf_wasm("geo");
    let geo = geo.to_str().expect("utf-8 path");
    let out = eddy(
        &[
            "--data-dir",
            data,
            "udf",
            "register",
            geo,
            "--name",
            "places",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("filter geo_fence(DOUBLE, DOUBLE) -> BOOLEAN"),
        "{}",
        text(&out.stdout)
    );
    let out = eddy(&["--data-dir", data, "udf", "list"], dir.path());
    assert!(
        text(&out.stdout).starts_with("places  "),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(
        dir.path().join("u.sql"),
        "CREATE STREAM s (k VARCHAR, v BIGINT) WITH (connector = 'file', path = 'in.jsonl', 'format.on_error' = 'skip');
         SELECT k, price_band(v) AS band FROM s WHERE is_mobile(k) OR k = 'a';",
    )
    .expect("write query");
    let out = eddy(&["--data-dir", data, "run", "u.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"k\":\"a\",\"band\":\"cheap\"}\n{\"k\":\"a\",\"band\":\"cheap\"}\n"
    );
    let out = eddy(
        &[
            "--data-dir",
            data,
            "udf",
            "register",
            &support::udf_wasm("wrong_abi").to_string_lossy(),
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("ABI version 2"),
        "{}",
        text(&out.stderr)
    );
    let out = eddy(&["--data-dir", data, "udf", "remove", "places"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = eddy(&["--data-dir", data, "run", "u.sql"], dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown function"),
        "{}",
        text(&out.stderr)
    );
}

/// GET `path` with the bearer `token`; the reply's body.
/// The README's demo: `eddy serve --demo` builds the example UDFs, registers
/// them, starts a query calling `median`, prints the login URL; SIGTERM stops
/// it cleanly with exit code 143 and the query recorded for the next start.
#[test]
fn serve_demo_runs_a_wasm_query_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut served = Served::start(&data, &["--demo", "--partitions", "1"]);
    let udfs = served.get("/api/udfs");
    assert!(
        udfs.contains("\"stats\"") && udfs.contains("median("),
        "{udfs}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let q = served.get("/api/queries/demo");
        let v: serde_json::Value = serde_json::from_str(&q).unwrap_or_default();
        if v["status"] == "running" && v["progress"]["records_out"].as_u64() > Some(0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo query emitted nothing: {q}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let status = served.terminate();
    assert_eq!(status.code(), Some(143), "{:?}", served.seen);
    let recorded = std::fs::read_to_string(data.join("queries.json")).expect("queries recorded");
    assert!(
        recorded.contains("\"demo\"") && recorded.contains("\"running\": true"),
        "{recorded}"
    );
}

/// `SET 'checkpoint.interval'` in a script sets its queries' interval,
/// over --checkpoint-interval.
#[test]
fn a_script_sets_its_checkpoint_interval() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("q.sql"),
        "SET 'checkpoint.interval' = '50ms';
         CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
           WITH (connector = 'nexmark', stream = 'bid', events = '20000', rate = '20000', realtime = 'true');
         CREATE STREAM out WITH (connector = 'file', path = 'out.jsonl');
         INSERT INTO out SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction;",
    )
    .expect("write query");
    let args = ["run", "q.sql", "--stats", "--checkpoint-dir", "chk"];
    let args = [&args[..], &["--checkpoint-interval", "1m"]].concat();
    let out = eddy(&args, dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    // about a second of input: a checkpoint every 50 ms, not one a minute
    let taken: u64 = stderr
        .split("query 1: ")
        .filter_map(|s| s.split(" checkpoints taken").next()?.parse().ok())
        .next()
        .unwrap_or_else(|| panic!("no checkpoint count in {stderr}"));
    assert!(taken >= 5, "{stderr}");
}

/// A finished query's checkpoint is checked against the script run again: a
/// compatible change (a comment, a renamed output column, HAVING) finds it
/// finished; a change of what the state depends on (the window) is refused
/// with why and the way out, which `--from-scratch` takes.
#[test]
fn a_changed_query_restores_only_when_its_state_fits() {
    let dir = setup();
    let sql = std::fs::read_to_string(dir.path().join("q.sql")).expect("script");
    let run = |sql: &str, extra: &[&str]| {
        std::fs::write(dir.path().join("q.sql"), sql).expect("write query");
        let args = [&["run", "q.sql", "--checkpoint-dir", "chk"][..], extra].concat();
        eddy(&args, dir.path())
    };
    let out = run(&sql, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let compatible = format!("-- totals per key\n{sql}")
        .replace("SUM(v) AS total", "SUM(v) AS sum_v")
        .replace("window_end;", "window_end HAVING SUM(v) > 0;");
    let out = run(&compatible, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("finished earlier"),
        "{}",
        text(&out.stderr)
    );
    let changed = sql.replace("'10' SECOND", "'20' SECOND");
    let out = run(&changed, &[]);
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("was written by a different query") && e.contains("--from-scratch"),
        "{e}"
    );
    let out = run(&changed, &["--from-scratch"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(dir.path().join("out.csv")).expect("sink file");
    assert!(csv.contains("a,2026-01-01T00:00:00Z,4"), "{csv}");
}

/// UNION ALL of two generated streams runs as a user writes it, with
/// checkpoints too (each source sends the barriers, the union aligns them).
#[test]
fn union_all_runs_with_and_without_checkpoints() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("q.sql"),
        "CREATE STREAM bid WITH (connector = 'nexmark', stream = 'bid', events = '5000');
         CREATE STREAM auction WITH (connector = 'nexmark', stream = 'auction', events = '5000');
         SELECT kind, COUNT(*) AS n FROM (
           SELECT 'bid' AS kind, date_time FROM bid
           UNION ALL SELECT 'auction', date_time FROM auction
         ) GROUP BY kind EMIT FINAL;",
    )
    .expect("write query");
    let out = eddy(&["run", "q.sql", "--partitions", "2"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut rows: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    rows.sort();
    // 5000 events in the mix 1 : 3 : 46
    assert_eq!(
        rows,
        [
            r#"{"kind":"auction","n":300}"#,
            r#"{"kind":"bid","n":4600}"#
        ]
    );
    let args = "run q.sql --checkpoint-dir chk --checkpoint-interval 10ms --stats";
    let out = eddy(&args.split(' ').collect::<Vec<_>>(), dir.path());
    let mut again: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    again.sort();
    assert_eq!(again, rows, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("checkpoints taken"));
    // writing over the file one side of the union reads is refused
    std::fs::write(dir.path().join("in.jsonl"), "{\"k\":\"a\"}\n").expect("write input");
    std::fs::write(
        dir.path().join("over.sql"),
        "CREATE STREAM bid WITH (connector = 'nexmark', stream = 'bid', events = '10');
         CREATE STREAM f (k VARCHAR) WITH (connector = 'file', path = 'in.jsonl');
         CREATE STREAM copy (k VARCHAR) WITH (connector = 'file', path = 'in.jsonl');
         INSERT INTO copy SELECT channel FROM bid UNION ALL SELECT k FROM f;",
    )
    .expect("write query");
    let out = eddy(&["run", "over.sql"], dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("which stream 'f' reads"),
        "{}",
        text(&out.stderr)
    );
    let kept = std::fs::read_to_string(dir.path().join("in.jsonl")).expect("input");
    assert_eq!(kept, "{\"k\":\"a\"}\n");
}
