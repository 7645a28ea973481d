//! What comes in: SQL, records and followed files.

use super::*;

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
