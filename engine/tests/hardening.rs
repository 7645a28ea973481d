//! Hostile and careless input through the `eddy` binary: every case once
//! crashed, hung or lost data (issue 12); each now gets a clear error or is
//! counted as malformed, and the process keeps its exit-code promises.

use std::path::Path;
use std::process::{Command, Output};

fn eddy(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("eddy runs")
}

/// A child process killed if the test fails before it is waited for.
struct Reaped(Option<std::process::Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes `files` (name, content) into a fresh directory.
fn files(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("written");
    }
    dir
}

/// A line nesting 40,000 objects inside a declared column once overflowed
/// the decoding thread's stack; now it is one malformed line.
#[test]
fn a_deeply_nested_line_is_malformed_not_fatal() {
    let d = 40_000;
    let deep = format!(
        "{{\"x\": 1, \"y\": {}1{}}}",
        "{\"a\":".repeat(d),
        "}".repeat(d)
    );
    let input = format!(
        "{deep}\n{{\"x\": 2, \"y\": 3}}\n[{}]\n",
        "[".repeat(d) + &"]".repeat(d)
    );
    let script = |policy: &str| {
        format!(
            "CREATE STREAM s (x BIGINT, y BIGINT) WITH (connector = 'file', path = 'in.jsonl', 'format.on_error' = '{policy}');
             SELECT x, y FROM s;"
        )
    };
    let dir = files(&[
        ("in.jsonl", &input),
        ("skip.sql", &script("skip")),
        ("fail.sql", &script("fail")),
    ]);
    let out = eddy(&["run", "skip.sql", "--stats"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\"x\":2,\"y\":3}\n");
    assert!(
        text(&out.stderr).contains("2 malformed"),
        "{}",
        text(&out.stderr)
    );
    let out = eddy(&["run", "fail.sql"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 1") && err.contains("deeper than 1000 levels"),
        "{err}"
    );
}

/// Flat chains of thousands of operators once overflowed the stack in
/// `check` or in a worker of `run`; now an expression may nest operators
/// 256 deep (what `check` accepts, `run` runs) and a deeper one is refused
/// at the operator that goes past it.
#[test]
fn operator_chains_are_capped_with_a_position_and_what_passes_runs() {
    let script = |expr: &str| {
        format!(
            "CREATE STREAM s (x BIGINT, v VARCHAR) WITH (connector = 'file', path = 'in.jsonl');\nSELECT {expr} AS y FROM s;\n"
        )
    };
    let dir = files(&[
        ("in.jsonl", "{\"x\": 1, \"v\": \"a\"}\n"),
        ("deepest.sql", &script(&format!("x{}", " + 1".repeat(256)))),
        (
            "or.sql",
            &script(
                &(0..256)
                    .map(|i| format!("x = {i}"))
                    .collect::<Vec<_>>()
                    .join(" OR "),
            ),
        ),
        ("plus.sql", &script(&format!("x{}", " + 1".repeat(5000)))),
        (
            "concat.sql",
            &script(&format!("v{}", " || 'b'".repeat(3000))),
        ),
        (
            "and.sql",
            &script(
                &(0..4000)
                    .map(|i| format!("x <> {i}"))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            ),
        ),
    ]);
    let out = eddy(&["check", "deepest.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = eddy(&["run", "deepest.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\"y\":257}\n");
    let out = eddy(&["run", "or.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\"y\":true}\n");
    for (file, column) in [("plus.sql", 1034), ("concat.sql", 1802), ("and.sql", 0)] {
        for cmd in ["check", "run"] {
            let out = eddy(&[cmd, file], dir.path());
            assert_eq!(
                out.status.code(),
                Some(1),
                "{cmd} {file}: {}",
                text(&out.stderr)
            );
            let err = text(&out.stderr);
            assert!(err.contains("nests operators more than 256 deep"), "{err}");
            assert!(
                err.contains("at line 2, column") && err.contains("hint:"),
                "{err}"
            );
            if column > 0 {
                assert!(err.contains(&format!("column {column}")), "{file}: {err}");
            }
        }
    }
}

/// A hopping window of a day every millisecond once put each row into 86
/// million windows and allocated until the process died; now the plan is
/// refused with the number and a hint, in both SQL forms.
#[test]
fn window_fan_out_is_capped_at_plan_time() {
    let stream = "CREATE STREAM s (x BIGINT, t TIMESTAMP, WATERMARK FOR t AS t) WITH (connector = 'file', path = 'in.jsonl');\n";
    let dir = files(&[
        ("in.jsonl", "{\"x\": 1, \"t\": \"2026-01-01T00:00:00Z\"}\n"),
        (
            "hop.sql",
            &format!(
                "{stream}SELECT window_start, COUNT(*) AS n FROM HOP(s, t, INTERVAL '1' MILLISECOND, INTERVAL '1' DAY) GROUP BY window_start, window_end;"
            ),
        ),
        (
            "sliding.sql",
            &format!(
                "{stream}SELECT window_start, COUNT(*) AS n FROM s GROUP BY window_start, window_end WINDOW SLIDING(INTERVAL '1' DAY, INTERVAL '1' MILLISECOND);"
            ),
        ),
        (
            "panes.sql",
            &format!(
                "{stream}SELECT window_start, COUNT(*) AS n FROM HOP(s, t, INTERVAL '999999' MILLISECOND, INTERVAL '1000' SECOND) GROUP BY window_start, window_end;"
            ),
        ),
        (
            "fine.sql",
            &format!(
                "{stream}SELECT window_start, COUNT(*) AS n FROM HOP(s, t, INTERVAL '1' SECOND, INTERVAL '1000' SECOND) GROUP BY window_start, window_end;"
            ),
        ),
    ]);
    for (file, want) in [
        (
            "hop.sql",
            "into 86400000 windows, more than the limit of 1000 at line 2, column 41",
        ),
        (
            "sliding.sql",
            "into 86400000 windows, more than the limit of 1000 at line 2, column 77",
        ),
        ("panes.sql", "1000000 panes of 1 MILLISECOND"),
    ] {
        let out = eddy(&["run", file], dir.path());
        assert_eq!(out.status.code(), Some(1), "{file}");
        let err = text(&out.stderr);
        assert!(err.contains(want) && err.contains("hint:"), "{file}: {err}");
    }
    let out = eddy(&["run", "fine.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().count(),
        1000,
        "a row in 1000 windows"
    );
}

/// `eddy check /dev/zero` once read until memory ran out, and
/// `--partitions 100000` failed with an OS error and no hint.
#[test]
fn script_size_and_partitions_are_capped_with_a_message() {
    let dir = files(&[
        (
            "q.sql",
            "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl'); SELECT x FROM s;",
        ),
        ("in.jsonl", "{\"x\":1}\n"),
    ]);
    let out = eddy(&["check", "/dev/zero"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("larger than 16 MiB, too large for a SQL script"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(dir.path().join("bin.sql"), [0xff, 0xfe, 0x00, 0x41]).expect("written");
    let out = eddy(&["check", "bin.sql"], dir.path());
    assert!(
        text(&out.stderr).contains("is not UTF-8 text"),
        "{}",
        text(&out.stderr)
    );
    for n in ["0", "100000", "many"] {
        let out = eddy(&["run", "q.sql", "--partitions", n], dir.path());
        assert_eq!(out.status.code(), Some(2), "clap's usage error");
        let err = text(&out.stderr);
        assert!(
            err.contains("--partitions")
                && (err.contains("give 1 to 256") || err.contains("not a number")),
            "{err}"
        );
    }
    let out = eddy(&["run", "q.sql", "--partitions", "256"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A slow stream's rows once sat in the file sink's buffer until it filled
/// or Ctrl-C, and SIGTERM killed the run without flushing or a distinct
/// exit code. Now rows reach the file within `'flush.interval'`, and a
/// signal stops the run cleanly: sinks flushed, stats printed, exit 130
/// after SIGINT and 143 after SIGTERM (0 only when the sources ended).
#[test]
fn slow_output_is_flushed_and_signals_stop_cleanly_with_their_exit_codes() {
    let script = "CREATE STREAM bids (auction BIGINT, price BIGINT, date_time TIMESTAMP)
           WITH (connector = 'nexmark', rate = '20', realtime = 'true');
         CREATE STREAM out WITH (connector = 'file', path = 'out.jsonl', 'flush.interval' = '200 ms');
         INSERT INTO out SELECT auction, price FROM bids;";
    let dir = files(&[("q.sql", script)]);
    for (signal, code) in [("-TERM", 143), ("-INT", 130)] {
        // an endless generator: the file sink writes straight to out.jsonl
        let child = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["run", "q.sql", "--stats"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("eddy runs");
        let child = Reaped(Some(child));
        std::thread::sleep(std::time::Duration::from_millis(1500));
        // 20 rows a second, flushed every 200 ms: on disk while it runs
        let lines = |p: &Path| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
        let out = dir.path().join("out.jsonl");
        let early = lines(&out);
        assert!(early >= 5, "{early} rows on disk after 1.5 s");
        let mut child = child;
        let child = child.0.take().expect("running");
        let killed = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let done = child.wait_with_output().expect("exits");
        let stderr = text(&done.stderr);
        assert_eq!(done.status.code(), Some(code), "{signal}: {stderr}");
        assert!(stderr.contains("stopping, sinks flushed"), "{stderr}");
        // every row the stats count as written is in the file, whole
        let written: usize = stderr
            .split(" records in, ")
            .nth(1)
            .and_then(|r| r.split(" out").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no stats in {stderr}"));
        let text = std::fs::read_to_string(&out).expect("output");
        assert_eq!(text.lines().count(), written, "{stderr}");
        assert!(text.ends_with('\n') && written >= early);
    }
}

/// A sink over its own input once truncated it before it was read (exit 0),
/// two queries into one file tore its lines, dead letters were appended to
/// the input, and a run that failed at once still truncated the output.
#[test]
fn files_are_never_destroyed_and_a_failed_run_keeps_the_previous_output() {
    let dir = files(&[
        ("in.jsonl", "{\"x\": 1}\n{\"x\": 2}\n"),
        ("bad.jsonl", "{\"x\": 1}\n{\"x\": \n"),
        ("out.jsonl", "previous output\n"),
        (
            "self.sql",
            "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl');
             CREATE STREAM o WITH (connector = 'file', path = './in.jsonl');
             INSERT INTO o SELECT x FROM s;",
        ),
        (
            "two.sql",
            "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl');
             CREATE STREAM o WITH (connector = 'file', path = 'out.jsonl');
             INSERT INTO o SELECT x FROM s;
             INSERT INTO o SELECT x + 1 AS x FROM s;",
        ),
        (
            "dead.sql",
            "CREATE STREAM s (x BIGINT, t TIMESTAMP, WATERMARK FOR t AS t)
               WITH (connector = 'file', path = 'in.jsonl', 'late_policy' = 'dead_letter', 'dead_letter.path' = 'in.jsonl');
             SELECT x FROM s;",
        ),
        (
            "fails.sql",
            "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'bad.jsonl');
             CREATE STREAM o WITH (connector = 'file', path = 'out.jsonl');
             INSERT INTO o SELECT x FROM s;",
        ),
        (
            "good.sql",
            "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl');
             CREATE STREAM o WITH (connector = 'file', path = 'out.jsonl');
             INSERT INTO o SELECT x FROM s;",
        ),
    ]);
    for (file, want, line) in [
        (
            "self.sql",
            "stream 'o' would write to './in.jsonl', which stream 's' reads",
            2,
        ),
        (
            "two.sql",
            "two queries write to 'out.jsonl' (through stream 'o')",
            2,
        ),
        (
            "dead.sql",
            "'in.jsonl' receives dead letters of stream 's'",
            1,
        ),
    ] {
        let out = eddy(&["run", file], dir.path());
        assert_eq!(out.status.code(), Some(1), "{file}");
        let err = text(&out.stderr);
        assert!(
            err.contains(want) && err.contains(&format!("at line {line}")),
            "{file}: {err}"
        );
        assert!(err.contains("hint: give each output"), "{err}");
    }
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).expect("file");
    assert_eq!(
        read("in.jsonl"),
        "{\"x\": 1}\n{\"x\": 2}\n",
        "the input is intact"
    );
    // a run that fails leaves the previous output, and no temporary file
    let out = eddy(&["run", "fails.sql"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(read("out.jsonl"), "previous output\n");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".eddy-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // one that succeeds replaces it whole
    let out = eddy(&["run", "good.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(read("out.jsonl"), "{\"x\":1}\n{\"x\":2}\n");
}

/// SIGKILL at seeded random moments of a bounded run: the output file is
/// always either the previous output or the whole new one (both computed
/// in this test), never a torn file. Two queries alternate (`y = x * 2`,
/// `y = x * 3`) so every run's output differs from the one before.
#[test]
fn a_killed_bounded_run_leaves_the_previous_output_or_the_whole_new_one() {
    let rows = 400_000;
    let input: String = (0..rows).map(|x| format!("{{\"x\": {x}}}\n")).collect();
    let output = |k: i64| -> String {
        (0..rows)
            .filter(|x| x % 3 == 0)
            .map(|x| format!("{{\"x\":{x},\"y\":{}}}\n", x * k))
            .collect()
    };
    let script = |k: i64| {
        format!(
            "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl');
             CREATE STREAM o WITH (connector = 'file', path = 'out.jsonl');
             INSERT INTO o SELECT x, x * {k} AS y FROM s WHERE x % 3 = 0;"
        )
    };
    let dir = files(&[
        ("in.jsonl", &input),
        ("q2.sql", &script(2)),
        ("q3.sql", &script(3)),
    ]);
    let out = dir.path().join("out.jsonl");
    // a whole run first: the previous output, and how long a run takes
    let started = std::time::Instant::now();
    let run = eddy(&["run", "q2.sql"], dir.path());
    let took = started.elapsed();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let mut previous = output(2);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), previous);
    // a small LCG: the same kill moments (as fractions of a run) every time
    let mut seed: u64 = 0x5eed_1234;
    let (mut torn_risks, mut completed) = (0, 0);
    for round in 0..12 {
        let k = if round % 2 == 0 { 3 } else { 2 };
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let after = took.mul_f64(((seed >> 33) % 1000) as f64 / 1000.0 * 1.2);
        let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["run", &format!("q{k}.sql")])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("eddy runs");
        std::thread::sleep(after);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().expect("waited");
        let now = std::fs::read_to_string(&out).expect("the output file is there");
        let new = output(k);
        assert!(
            now == previous || now == new,
            "killed after {after:?} ({status}): the output is neither the previous nor the whole new one ({} bytes)",
            now.len()
        );
        if now == new {
            completed += 1;
            previous = new;
        } else {
            torn_risks += 1;
        }
    }
    eprintln!(
        "{torn_risks} of 12 runs were killed before the end and left the previous output; {completed} finished first"
    );
}

/// A data file's terminal escape sequences once reached the operator's
/// terminal through the malformed-line message; now they are escaped.
#[test]
fn control_characters_from_input_never_reach_the_terminal() {
    let dir = files(&[
        ("in.jsonl", "{\"x\": \"\u{1b}[2J\u{1b}]0;owned\u{7}\"}\n"),
        (
            "q.sql",
            "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl'); SELECT x FROM s;",
        ),
    ]);
    let out = eddy(&["run", "q.sql"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 1") && err.contains("\\u{1b}[2J"),
        "{err}"
    );
    assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "{err:?}");
}

#[path = "../../tests/support/lib.rs"]
#[allow(dead_code)]
mod support;

/// Concurrent `eddy udf register` runs once lost registrations; a corrupt
/// index or module file made every command fail (even `udf remove` and
/// queries calling no UDF); the index's sha256 was joined into a path
/// unchecked.
#[test]
fn the_udf_registry_survives_races_corruption_and_crafted_indexes() {
    let stats = support::udf_wasm("stats");
    let geo = support::udf_wasm("geo");
    let query = files(&[
        ("in.jsonl", "{\"x\": 1}\n"),
        (
            "q.sql",
            "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl'); SELECT x FROM s;",
        ),
    ]);
    let with_data = |data: &Path, args: &[&str]| {
        let mut all = vec!["--data-dir", data.to_str().unwrap()];
        all.extend_from_slice(args);
        eddy(&all, query.path())
    };
    for trial in 0..6 {
        let data = tempfile::tempdir().unwrap();
        let spawn = |m: &Path| {
            Command::new(env!("CARGO_BIN_EXE_eddy"))
                .arg("--data-dir")
                .arg(data.path())
                .args(["udf", "register"])
                .arg(m)
                .output()
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| spawn(&stats).expect("runs"));
            let b = s.spawn(|| spawn(&geo).expect("runs"));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert!(
            a.status.success() && b.status.success(),
            "{} {}",
            text(&a.stderr),
            text(&b.stderr)
        );
        let list = text(&with_data(data.path(), &["udf", "list"]).stdout);
        assert!(
            list.contains("stats ") && list.contains("geo "),
            "trial {trial}: {list}"
        );
    }
    // a module file damaged on disk: set aside with a warning; the rest works
    let data = tempfile::tempdir().unwrap();
    for m in [&stats, &geo] {
        assert!(
            with_data(data.path(), &["udf", "register", m.to_str().unwrap()])
                .status
                .success()
        );
    }
    let udf = data.path().join("udf");
    let index = std::fs::read_to_string(udf.join("index.json")).unwrap();
    let entries: serde_json::Value = serde_json::from_str(&index).unwrap();
    let stats_sha = entries[0]["sha256"].as_str().unwrap().to_string();
    std::fs::write(udf.join(format!("{stats_sha}.wasm")), b"garbage").unwrap();
    let run = with_data(data.path(), &["run", "q.sql"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("UDF module 'stats' is set aside"),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(text(&run.stdout), "{\"x\":1}\n");
    let list = with_data(data.path(), &["udf", "list"]);
    assert!(
        text(&list.stdout).contains("geo "),
        "{}",
        text(&list.stdout)
    );
    let removed = with_data(data.path(), &["udf", "remove", "stats"]);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    let list = with_data(data.path(), &["udf", "list"]);
    assert!(
        !text(&list.stderr).contains("warning"),
        "{}",
        text(&list.stderr)
    );
    // a crafted index: a sha256 that is a path is never opened
    std::fs::write(
        udf.join("index.json"),
        r#"[{"name": "evil", "sha256": "../../../../etc/passwd", "size": 1}]"#,
    )
    .unwrap();
    let list = with_data(data.path(), &["udf", "list"]);
    assert!(list.status.success());
    assert!(
        text(&list.stderr).contains("is not a sha256"),
        "{}",
        text(&list.stderr)
    );
    // a corrupt index: moved aside; every command works again
    std::fs::write(udf.join("index.json"), b"{ not json").unwrap();
    let run = with_data(data.path(), &["run", "q.sql"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("is not valid JSON"),
        "{}",
        text(&run.stderr)
    );
    assert!(
        std::fs::read_dir(&udf).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("corrupt"))
    );
    let again = with_data(data.path(), &["udf", "register", geo.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again.stderr));
}

/// `--udf-timeout-ms 0` once became 1 ms silently: out-of-range UDF
/// limits are usage errors that say the range.
#[test]
fn invalid_udf_limits_are_refused() {
    let dir = files(&[("q.sql", "SELECT 1")]);
    for (flag, value, range) in [
        ("--udf-timeout-ms", "0", "10..=600000"),
        ("--udf-memory-mib", "0", "1..=4096"),
        ("--udf-max-module-mib", "99999", "1..=1024"),
    ] {
        let out = eddy(&[flag, value, "check", "q.sql"], dir.path());
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = text(&out.stderr);
        assert!(err.contains(flag) && err.contains(range), "{err}");
    }
}

/// NULL-typed expressions once passed `check` and failed at run time with
/// an internal Arrow error; an untyped NULL now takes its column's type.
#[test]
fn null_typed_expressions_run_as_check_promises() {
    let dir = files(&[
        ("in.jsonl", "{\"x\": 1, \"t\": \"2026-01-01T00:00:00Z\"}\n"),
        (
            "q.sql",
            "CREATE STREAM s (x BIGINT, t TIMESTAMP, WATERMARK FOR t AS t) WITH (connector = 'file', path = 'in.jsonl');
             SELECT x, NULL AS n, CASE WHEN x > 0 THEN NULL END AS c, COALESCE(NULL, NULL) AS k, x + NULL AS y FROM s;",
        ),
        (
            "agg.sql",
            "CREATE STREAM s (x BIGINT, t TIMESTAMP, WATERMARK FOR t AS t) WITH (connector = 'file', path = 'in.jsonl');
             SELECT window_start, MAX(NULL) AS m, COUNT(*) AS c, NULL AS z FROM TUMBLE(s, t, INTERVAL '1' SECOND) GROUP BY window_start, window_end;",
        ),
    ]);
    for (file, want) in [
        (
            "q.sql",
            "{\"x\":1,\"n\":null,\"c\":null,\"k\":null,\"y\":null}\n",
        ),
        (
            "agg.sql",
            "{\"window_start\":\"2026-01-01T00:00:00Z\",\"m\":null,\"c\":1,\"z\":null}\n",
        ),
    ] {
        assert!(eddy(&["check", file], dir.path()).status.success());
        let out = eddy(&["run", file], dir.path());
        assert!(out.status.success(), "{file}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), want);
    }
}

/// In a multi-query script a failed query was reported only when the whole
/// process exited; now its failure is on stderr when it happens, the other
/// queries run on, and the exit code is 1.
#[test]
fn a_failing_query_of_several_is_reported_when_it_fails() {
    let dir = files(&[
        ("bad.jsonl", "{\"x\": 1}\n{\"x\": \n"),
        (
            "q.sql",
            "CREATE STREAM bad (x BIGINT) WITH (connector = 'file', path = 'bad.jsonl');
             CREATE STREAM gen (auction BIGINT) WITH (connector = 'nexmark', stream = 'bid', rate = '50', realtime = 'true');
             CREATE STREAM o WITH (connector = 'file', path = 'out.jsonl');
             SELECT x FROM bad;
             INSERT INTO o SELECT auction FROM gen;",
        ),
    ]);
    let mut child = Reaped(Some(
        Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["run", "q.sql"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("eddy runs"),
    ));
    let mut stderr = child.0.as_mut().unwrap().stderr.take().unwrap();
    // the failure is reported while the endless query still runs
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        let mut seen = String::new();
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = tx.send(seen.clone());
        }
    });
    // stderr arrives in pieces: read until the report is whole
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut report = String::new();
    while !report.contains("line 2") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(seen) => report = seen,
            Err(_) => break,
        }
    }
    assert!(
        report.contains("error: query 1 failed") && report.contains("line 2"),
        "{report}"
    );
    let running = child.0.as_mut().unwrap().try_wait().expect("status");
    assert!(running.is_none(), "the other query runs on");
    let c = child.0.take().unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let done = c.wait_with_output().expect("exits");
    assert_eq!(done.status.code(), Some(143));
}

/// `FROM "bids"` could never be resolved (the quotes stayed in the name);
/// names now follow one rule everywhere: case-insensitive, quoted or not.
#[test]
fn quoted_names_resolve_like_unquoted_ones() {
    let dir = files(&[
        ("in.jsonl", "{\"x\": 1}\n"),
        (
            "q.sql",
            "CREATE STREAM \"my bids\" (x BIGINT) WITH (connector = 'file', path = 'in.jsonl');
             CREATE STREAM \"Out\" WITH (connector = 'file', path = 'out.jsonl');
             INSERT INTO \"out\" SELECT \"x\" FROM \"MY BIDS\";",
        ),
        (
            "plain.sql",
            "CREATE STREAM bids (x BIGINT) WITH (connector = 'file', path = 'in.jsonl'); SELECT x FROM \"bids\";",
        ),
    ]);
    let out = eddy(&["run", "q.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap(),
        "{\"x\":1}\n"
    );
    let out = eddy(&["run", "plain.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\"x\":1}\n");
}

/// One row at `i64::MIN` or `i64::MAX` ms once made windows overflow (a
/// panic, an endless HOP loop, rows vanishing uncounted) and computed
/// timestamps wrapped and were written as "...ms". Input outside years
/// 0000–9999 is malformed with the reason; computed ones outside are NULL.
#[test]
fn timestamps_outside_the_supported_range_are_malformed_or_null() {
    let dir = files(&[
        (
            "in.jsonl",
            "{\"x\": 1, \"t\": -9223372036854775808}\n{\"x\": 2, \"t\": \"2026-01-01T00:00:01Z\"}\n{\"x\": 3, \"t\": 9223372036854775807}\n{\"x\": 4, \"t\": \"10000-01-01T00:00:00Z\"}\n",
        ),
        (
            "hop.sql",
            "CREATE STREAM s (x BIGINT, t TIMESTAMP, WATERMARK FOR t AS t) WITH (connector = 'file', path = 'in.jsonl', 'format.on_error' = 'skip');
             SELECT window_start, COUNT(*) AS n FROM HOP(s, t, INTERVAL '1' SECOND, INTERVAL '2' SECOND) GROUP BY window_start, window_end;",
        ),
        (
            "fail.sql",
            "CREATE STREAM s (x BIGINT, t TIMESTAMP) WITH (connector = 'file', path = 'in.jsonl'); SELECT x, t FROM s;",
        ),
        (
            "math.sql",
            "CREATE STREAM s (x BIGINT, t TIMESTAMP) WITH (connector = 'file', path = 'ok.jsonl');
             SELECT CAST(9223372036854775807 AS TIMESTAMP) + INTERVAL '1' SECOND AS a, t + INTERVAL '1' SECOND AS b FROM s;",
        ),
        ("ok.jsonl", "{\"x\": 1, \"t\": \"2026-01-01T00:00:00Z\"}\n"),
    ]);
    let out = eddy(&["run", "hop.sql", "--stats"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("1 records in") && text(&out.stderr).contains("3 malformed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout).lines().count(),
        2,
        "the one good row's two windows"
    );
    let out = eddy(&["run", "fail.sql"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("line 1: column 't' holds -9223372036854775808 ms, outside the supported TIMESTAMP range"), "{}", text(&out.stderr));
    let out = eddy(&["run", "math.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"a\":null,\"b\":\"2026-01-01T00:00:01Z\"}\n"
    );
}

/// JSON wrote ±inf/NaN as null and CSV as inf/NaN; one rule now: NULL.
#[test]
fn non_finite_doubles_are_null_in_every_format() {
    let dir = files(&[
        ("in.jsonl", "{\"d\": 1e308}\n"),
        (
            "q.sql",
            "CREATE STREAM s (d DOUBLE) WITH (connector = 'file', path = 'in.jsonl');
             CREATE STREAM c WITH (connector = 'file', path = 'out.csv', format = 'csv');
             CREATE STREAM j WITH (connector = 'file', path = 'out.jsonl');
             INSERT INTO c SELECT d * 10.0 AS inf, d * -10.0 AS ninf, d AS d FROM s;
             INSERT INTO j SELECT d * 10.0 AS inf, d * -10.0 AS ninf, d AS d FROM s;",
        ),
    ]);
    let out = eddy(&["run", "q.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert!(
        read("out.csv").starts_with("inf,ninf,d\n,,1"),
        "{}",
        read("out.csv")
    );
    assert!(
        read("out.jsonl").starts_with("{\"inf\":null,\"ninf\":null,\"d\":"),
        "{}",
        read("out.jsonl")
    );
}

/// A UTF-8 byte-order mark once made line 1 malformed.
#[test]
fn a_byte_order_mark_is_not_part_of_the_first_line() {
    let dir = files(&[
        ("in.jsonl", "\u{feff}{\"x\": 1}\n{\"x\": 2}\n"),
        (
            "q.sql",
            "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl'); SELECT x FROM s;",
        ),
    ]);
    let out = eddy(&["run", "q.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\"x\":1}\n{\"x\":2}\n");
}

/// `follow` once missed truncation (rows lost or a failure mid-line),
/// never picked up a rotated file and waited silently on a deleted one.
/// Now it behaves as `tail -F` and says so on stderr.
#[test]
fn follow_survives_truncation_rotation_and_deletion() {
    let dir = files(&[
        ("in.jsonl", "{\"x\": 1}\n"),
        (
            "q.sql",
            "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl', follow = 'true');
             CREATE STREAM o WITH (connector = 'file', path = 'out.jsonl', 'flush.interval' = '100 ms');
             INSERT INTO o SELECT x FROM s;",
        ),
    ]);
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    let mut child = Reaped(Some(
        Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["run", "q.sql"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("eddy runs"),
    ));
    let rows = || -> Vec<String> {
        std::fs::read_to_string(&output)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let wait_rows = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while rows().len() < n {
            assert!(std::time::Instant::now() < deadline, "only {:?}", rows());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let append = |text: &str| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&input)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    wait_rows(1);
    append("{\"x\": 2}\n");
    wait_rows(2);
    // truncated, then written again
    std::fs::write(&input, "").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    append("{\"x\": 3}\n");
    wait_rows(3);
    // rotated: moved away, a new file at the path
    std::fs::rename(&input, dir.path().join("in.jsonl.1")).unwrap();
    std::fs::write(&input, "{\"x\": 4}\n").unwrap();
    wait_rows(4);
    // deleted, then created again
    std::fs::remove_file(&input).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(&input, "{\"x\": 5}\n").unwrap();
    wait_rows(5);
    assert_eq!(
        rows(),
        [
            "{\"x\":1}",
            "{\"x\":2}",
            "{\"x\":3}",
            "{\"x\":4}",
            "{\"x\":5}"
        ]
    );
    let c = child.0.take().unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let done = c.wait_with_output().expect("exits");
    let err = text(&done.stderr);
    for said in ["was truncated", "a new file is at that path", "was deleted"] {
        assert!(err.contains(said), "{said}: {err}");
    }
}
