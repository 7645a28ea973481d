//! `eddy serve`'s HTTP API through real HTTP on an ephemeral port: every
//! route, the error statuses, auth before body, parallel uploads, two
//! queries at once where one fails, live events, and a restart that brings
//! the recorded queries back.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use eddy::server::{ServeOptions, Server};
use eddy_suite::http::{Reply, request};
use serde_json::{Value, json};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

const BEARER: (&str, &str) = ("Authorization", "Bearer 0123456789abcdef0123456789abcdef");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[BEARER], None)
}

fn post(addr: SocketAddr, path: &str, body: &Value) -> Reply {
    let b = body.to_string();
    request(addr, "POST", path, &[BEARER, JSON], Some(b.as_bytes()))
}

fn server(dir: &std::path::Path) -> Server {
    let mut o = ServeOptions::new(dir.to_path_buf());
    o.listen = "127.0.0.1:0".parse().unwrap();
    o.token = Some(TOKEN.into());
    o.max_sql_bytes = 64 << 10;
    o.max_queries = 3;
    o.udf_limits.module_bytes = 4 << 20;
    Server::start(o).expect("starts")
}

/// A generator stream paced in real time, so a query runs until stopped.
fn paced(query: &str) -> String {
    format!(
        "CREATE STREAM bids (auction BIGINT, price BIGINT, date_time TIMESTAMP,
           WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
         WITH (connector = 'nexmark', events = '100000000', rate = '50000', realtime = 'true');
         {query}"
    )
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn auth_host_origin_and_limits_come_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let a = s.addr();
    assert_eq!(
        request(a, "GET", "/healthz", &[], None).json()["status"],
        "ok"
    );
    // no token: 401, and before the (oversized) body is read
    let big = vec![b'x'; 8 << 20];
    let r = request(a, "POST", "/api/queries", &[JSON], Some(&big));
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.json()["hint"].as_str().unwrap().contains("Bearer"));
    let r = request(
        a,
        "GET",
        "/api/queries",
        &[("Authorization", "Bearer wrong")],
        None,
    );
    assert_eq!(r.status, 401);
    // a foreign Host (DNS rebinding) is refused even with the token
    let r = request(
        a,
        "GET",
        "/api/queries",
        &[BEARER, ("Host", "evil.example:80")],
        None,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // the login URL sets an HttpOnly, SameSite=Strict cookie that works for GET ...
    let r = request(a, "GET", &format!("/login?token={TOKEN}"), &[], None);
    assert_eq!(r.status, 303);
    let cookie = r.header("set-cookie").expect("a cookie").to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    assert_eq!(
        request(a, "GET", "/api/queries", &[("Cookie", &pair)], None).status,
        200
    );
    assert_eq!(
        request(a, "GET", "/login?token=nope", &[], None).status,
        401
    );
    // ... but a change by cookie needs this server's Origin
    let body = json!({"sql": "x"}).to_string();
    let r = request(
        a,
        "POST",
        "/api/queries/check",
        &[("Cookie", &pair), JSON],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let origin = format!("http://{a}");
    let r = request(
        a,
        "POST",
        "/api/queries/check",
        &[("Cookie", &pair), ("Origin", &origin), JSON],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = request(
        a,
        "POST",
        "/api/queries/check",
        &[BEARER, ("Origin", "http://evil.example"), JSON],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 403);
    // 411 without a length, 413 over the limit, 415 not JSON
    assert_eq!(
        request(a, "POST", "/api/queries/check", &[BEARER, JSON], None).status,
        411
    );
    let huge = json!({"sql": "x".repeat(100 << 10)}).to_string();
    let r = request(
        a,
        "POST",
        "/api/queries/check",
        &[BEARER, JSON],
        Some(huge.as_bytes()),
    );
    assert_eq!(r.status, 413, "{}", r.body);
    let r = request(
        a,
        "POST",
        "/api/queries/check",
        &[BEARER, ("Content-Type", "text/plain")],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 415, "{}", r.body);
    // unknown routes and bad JSON bodies are JSON errors too
    let r = get(a, "/api/nothing");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
    let r = request(
        a,
        "POST",
        "/api/queries/check",
        &[BEARER, JSON],
        Some(b"{\"sq\": 1}"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // Prometheus text for every query
    let r = request(a, "GET", "/metrics", &[], None);
    assert_eq!(r.status, 200);
    assert!(s.shutdown(Duration::from_secs(10)));
}

#[test]
fn queries_check_explain_run_stream_stop_and_fail_apart() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let a = s.addr();
    // check: a plan error with its line and column
    let r = post(
        a,
        "/api/queries/check",
        &json!({"sql": "CREATE STREAM b (auction BIGINT) WITH (connector = 'nexmark');\nSELECT y FROM b"}),
    );
    assert_eq!(r.status, 400);
    let e = r.json();
    assert_eq!(
        (e["line"].as_u64(), e["column"].as_u64()),
        (Some(2), Some(8)),
        "{e}"
    );
    // ...and the streams declared before the error, for the editor's completion
    assert_eq!(e["streams"][0]["name"], "b", "{e}");
    assert_eq!(
        e["streams"][0]["columns"][0],
        json!({"name": "auction", "type": "BIGINT"})
    );
    let sql = paced(
        "SELECT auction, window_start, COUNT(*) AS n FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND)
         GROUP BY auction, window_start, window_end",
    );
    let r = post(a, "/api/queries/check", &json!({"sql": sql}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["streams"][0]["connector"], "nexmark", "{}", r.body);
    // explain: the plan graph
    let r = post(a, "/api/queries/explain", &json!({"sql": sql}));
    assert_eq!(r.status, 200, "{}", r.body);
    let kinds: Vec<String> = r.json()["graph"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.contains(&"TumblingWindowAggregate".to_string()),
        "{kinds:?}"
    );
    // two queries at once; one fails (its file does not exist) and the other runs on
    let r = post(a, "/api/queries", &json!({"name": "windows", "sql": sql}));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(a, "/api/queries", &json!({"name": "windows", "sql": sql}));
    assert_eq!(r.status, 409);
    // a file that does not exist: refused at once
    let missing = "CREATE STREAM f (x BIGINT) WITH (connector = 'file', path = '/nonexistent/eddy/in.jsonl'); SELECT x FROM f";
    let r = post(
        a,
        "/api/queries",
        &json!({"name": "missing", "sql": missing}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("in.jsonl"),
        "{}",
        r.body
    );
    // a file with a bad line: starts, then fails while the other runs on
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"x\": 1}\n{\"x\": \n").unwrap();
    let bad = format!(
        "CREATE STREAM f (x BIGINT) WITH (connector = 'file', path = '{}'); SELECT x FROM f",
        input.display()
    );
    let r = post(a, "/api/queries", &json!({"name": "broken", "sql": bad}));
    assert_eq!(r.status, 201, "{}", r.body);
    wait_for("the broken query to fail", || {
        get(a, "/api/queries/broken").json()["status"] == "failed"
    });
    let failed = get(a, "/api/queries/broken").json();
    assert!(
        failed["error"].as_str().unwrap().contains("line 2"),
        "{failed}"
    );
    let r = post(a, "/api/queries", &json!({"name": "bad name!", "sql": sql}));
    assert_eq!(r.status, 400);
    wait_for("rows", || {
        get(a, "/api/queries/windows").json()["progress"]["records_out"].as_u64() > Some(0)
    });
    let view = get(a, "/api/queries/windows").json();
    assert_eq!(view["status"], "running");
    // per-node numbers for the live plan graph: the window operator, by graph node id
    let live = &view["progress"]["live"];
    let window = live["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"].as_str().unwrap().contains("aggregate"))
        .unwrap_or_else(|| panic!("no window operator in {live}"));
    let graph = post(a, "/api/queries/explain", &json!({"sql": sql})).json()["graph"].clone();
    let node = window["node"].as_u64().unwrap() as usize;
    assert_eq!(
        graph["nodes"][node]["kind"], "TumblingWindowAggregate",
        "{live}"
    );
    assert!(
        window["rows_in"].as_u64() > Some(0) && live["event_time_max"].as_i64().is_some(),
        "{live}"
    );
    // live events: progress and rows, on one stream
    let mut stream = TcpStream::connect(a).unwrap();
    write!(
        stream,
        "GET /api/queries/windows/events HTTP/1.1\r\nHost: {a}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut lines = BufReader::new(stream.try_clone().unwrap()).lines();
    let (mut saw_rows, mut saw_progress) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(saw_rows && saw_progress) && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        saw_rows |= line == "event:rows" || line == "event: rows";
        saw_progress |= line == "event:progress" || line == "event: progress";
    }
    assert!(
        saw_rows && saw_progress,
        "rows {saw_rows}, progress {saw_progress}"
    );
    drop(stream);
    // a client that went away slows nothing: the query keeps running
    let list = get(a, "/api/queries").json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    // stop, start again, delete
    let r = request(a, "POST", "/api/queries/windows/stop", &[BEARER], Some(b""));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "stopped");
    let r = request(a, "GET", "/api/queries/windows/events", &[BEARER], None);
    assert_eq!(r.status, 409);
    let r = request(
        a,
        "POST",
        "/api/queries/windows/start",
        &[BEARER],
        Some(b""),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "running");
    assert_eq!(
        request(a, "DELETE", "/api/queries/windows", &[BEARER], None).status,
        204
    );
    assert_eq!(get(a, "/api/queries/windows").status, 404);
    assert!(s.shutdown(Duration::from_secs(10)));
}

#[test]
fn a_restarted_server_lists_its_queries_and_restarts_the_running_ones() {
    let dir = tempfile::tempdir().unwrap();
    let sql = paced("SELECT auction, price FROM bids WHERE price > 0");
    {
        let s = server(dir.path());
        let a = s.addr();
        assert_eq!(
            post(a, "/api/queries", &json!({"name": "running", "sql": sql})).status,
            201
        );
        assert_eq!(
            post(a, "/api/queries", &json!({"name": "stopped", "sql": sql})).status,
            201
        );
        let r = request(a, "POST", "/api/queries/stopped/stop", &[BEARER], Some(b""));
        assert_eq!(r.status, 200);
        assert!(s.shutdown(Duration::from_secs(10)));
    }
    let s = server(dir.path());
    let a = s.addr();
    let list = get(a, "/api/queries").json();
    let status = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == name)
            .map(|q| q["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("running").as_deref(), Some("running"), "{list}");
    assert_eq!(status("stopped").as_deref(), Some("stopped"), "{list}");
    wait_for("the restarted query to read", || {
        get(a, "/api/queries/running").json()["progress"]["records_in"].as_u64() > Some(0)
    });
    assert!(s.shutdown(Duration::from_secs(10)));
}

#[test]
fn with_checkpoints_a_restarted_server_resumes_its_queries_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let chk = dir.path().join("chk");
    let start = || {
        let mut o = ServeOptions::new(dir.path().to_path_buf());
        o.listen = "127.0.0.1:0".parse().unwrap();
        o.token = Some(TOKEN.into());
        o.checkpoint = Some(eddy::CheckpointConfig {
            interval: Duration::from_millis(200),
            ..eddy::CheckpointConfig::new(chk.to_str().unwrap())
        });
        Server::start(o).expect("starts")
    };
    let sql = paced(
        "SELECT auction, window_start, COUNT(*) AS n
         FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND) GROUP BY auction, window_start, window_end",
    );
    let view = |a: SocketAddr| get(a, "/api/queries/counts").json();
    {
        let s = start();
        let a = s.addr();
        let r = post(a, "/api/queries", &json!({"name": "counts", "sql": sql}));
        assert_eq!(r.status, 201);
        wait_for("a checkpoint", || {
            view(a)["checkpoints"]["last"]["id"].as_u64() >= Some(2)
        });
        assert!(s.shutdown(Duration::from_secs(10)));
    }
    let s = start();
    let a = s.addr();
    let v = view(a);
    let restored = v["checkpoints"]["restored"]["id"].as_u64();
    assert!(restored >= Some(2), "{v}");
    assert!(v["checkpoints"]["restored"]["recovery_ms"].is_u64(), "{v}");
    // stop takes a last checkpoint; start resumes from it
    let r = request(a, "POST", "/api/queries/counts/stop", &[BEARER], Some(b""));
    assert_eq!(r.status, 200);
    wait_for("the stop", || view(a)["status"] == "stopped");
    let r = request(a, "POST", "/api/queries/counts/start", &[BEARER], Some(b""));
    assert_eq!(r.status, 200);
    let again = view(a)["checkpoints"]["restored"]["id"].as_u64();
    assert!(again > restored, "{again:?} after {restored:?}");
    // deleting the query deletes its checkpoints
    assert!(chk.join("counts").exists());
    let r = request(a, "DELETE", "/api/queries/counts", &[BEARER], None);
    assert_eq!(r.status, 204);
    assert!(
        std::fs::read_dir(chk.join("counts")).map_or(true, |mut d| d.next().is_none()),
        "checkpoints left behind"
    );
    assert!(s.shutdown(Duration::from_secs(10)));
}

#[test]
fn udf_modules_upload_in_parallel_list_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let a = s.addr();
    let stats = std::fs::read(eddy_suite::udf_wasm("stats")).unwrap();
    let geo = std::fs::read(eddy_suite::udf_wasm("geo")).unwrap();
    let wasm = ("Content-Type", "application/wasm");
    // two uploads at once: neither registration is lost
    let (r1, r2) = std::thread::scope(|sc| {
        let h1 = sc.spawn(|| request(a, "POST", "/api/udfs/stats", &[BEARER, wasm], Some(&stats)));
        let h2 = sc.spawn(|| request(a, "POST", "/api/udfs/geo", &[BEARER, wasm], Some(&geo)));
        (h1.join().unwrap(), h2.join().unwrap())
    });
    assert_eq!(
        (r1.status, r2.status),
        (201, 201),
        "{} / {}",
        r1.body,
        r2.body
    );
    let sigs: Vec<String> = r1.json()["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["signature"].as_str().unwrap().to_string())
        .collect();
    assert!(sigs.iter().any(|s| s.starts_with("median(")), "{sigs:?}");
    let list = get(a, "/api/udfs").json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(
        request(a, "POST", "/api/udfs/stats", &[BEARER, wasm], Some(&stats)).status,
        409
    );
    // not a module: the registry's message; wrong type: 415
    let r = request(
        a,
        "POST",
        "/api/udfs/junk",
        &[BEARER, wasm],
        Some(b"not wasm at all"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().len() > 10);
    let r = request(
        a,
        "POST",
        "/api/udfs/junk",
        &[BEARER, ("Content-Type", "text/plain")],
        Some(b"x"),
    );
    assert_eq!(r.status, 415);
    // a query may call an uploaded aggregate
    let sql = paced(
        "SELECT auction, window_start, median(CAST(price AS DOUBLE)) AS m FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND)
         GROUP BY auction, window_start, window_end",
    );
    let r = post(a, "/api/queries/check", &json!({"sql": sql}));
    assert_eq!(r.status, 200, "{}", r.body);
    // explain names the module (and its sha256) of each WASM call
    let graph = post(a, "/api/queries/explain", &json!({"sql": sql})).json()["graph"].clone();
    let marked: Vec<&Value> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n.get("wasm").is_some())
        .collect();
    assert_eq!(marked.len(), 1, "{graph}");
    assert_eq!(marked[0]["kind"], "TumblingWindowAggregate");
    assert_eq!(marked[0]["wasm"][0]["module"], "stats");
    assert_eq!(marked[0]["wasm"][0]["sha256"].as_str().unwrap().len(), 64);
    // a typo names the closest function, uploaded ones included
    let typo = sql.replace("median(", "medain(");
    let e = post(a, "/api/queries/check", &json!({"sql": typo})).json();
    assert!(
        e["hint"]
            .as_str()
            .unwrap()
            .contains("did you mean 'median'"),
        "{e}"
    );
    // what SQL can call: built-in and uploaded, for completion
    let functions = get(a, "/api/functions").json();
    let find = |n: &str| {
        functions
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == n)
            .cloned()
    };
    assert_eq!(find("median").unwrap()["module"], "stats", "{functions}");
    assert_eq!(find("avg").unwrap()["kind"], "aggregate");
    assert_eq!(find("upper").unwrap()["kind"], "scalar");
    // try a function on typed values: an aggregate over rows, a scalar per row
    let r = post(
        a,
        "/api/udfs/stats/median/try",
        &json!({"rows": [[1], [2], [3], [4], [10]]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert_eq!(t["results"], json!([3.0]));
    assert!(
        t["memory_bytes"].as_u64() > Some(0)
            && t["memory_limit_bytes"].as_u64() > t["memory_bytes"].as_u64(),
        "{t}"
    );
    let r = post(
        a,
        "/api/udfs/geo/in_region/try",
        &json!({"rows": [[52.52, 13.40], [0.0, 0.0]]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["results"].as_array().unwrap().len(),
        2,
        "{}",
        r.body
    );
    let r = post(a, "/api/udfs/stats/median/try", &json!({"rows": [["x"]]}));
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("argument 1 is DOUBLE"),
        "{}",
        r.body
    );
    let r = post(a, "/api/udfs/stats/nope/try", &json!({"rows": [[1]]}));
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("has no function nope"),
        "{}",
        r.body
    );
    assert_eq!(
        post(a, "/api/udfs/absent/median/try", &json!({"rows": [[1]]})).status,
        404
    );
    // the retract probe: median can retract rows, p90 cannot
    let list = get(a, "/api/udfs").json();
    let stats_fns = &list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "stats")
        .unwrap()["functions"];
    let retract = |n: &str| {
        stats_fns
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == n)
            .unwrap()["retract"]
            .clone()
    };
    assert_eq!(
        (retract("median"), retract("p90")),
        (json!(true), json!(false))
    );
    assert_eq!(
        request(a, "DELETE", "/api/udfs/geo", &[BEARER], None).status,
        204
    );
    assert_eq!(
        request(a, "DELETE", "/api/udfs/geo", &[BEARER], None).status,
        404
    );
    assert_eq!(get(a, "/api/udfs").json().as_array().unwrap().len(), 1);
    assert!(s.shutdown(Duration::from_secs(10)));
}
