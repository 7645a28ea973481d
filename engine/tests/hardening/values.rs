//! Values and limits: the JSON type rules, numerically extreme aggregates,
//! the window-state bound and positions on every syntax error.

use crate::{eddy, files, text};

/// JSON decoding was once more lenient than docs/sql.md said: `"2"` read as
/// BIGINT, `3.7` truncated into INT, `1e400` an infinite DOUBLE, and two
/// objects on one line read as two records.
#[test]
fn json_types_are_strict_unless_lenient() {
    let stream = |extra: &str| {
        format!(
            "CREATE STREAM s (x BIGINT, i INT, d DOUBLE) WITH (connector = 'file', path = 'in.jsonl', 'format.on_error' = 'skip'{extra});
             SELECT x, i, d FROM s;"
        )
    };
    let dir = files(&[
        (
            "in.jsonl",
            "{\"x\": 1, \"i\": 2, \"d\": 0.5}\n{\"x\": \"2\"}\n{\"i\": 3.7}\n{\"d\": 1e400}\n{\"x\": 5}{\"x\": 6}\n{\"x\": 7, \"d\": -0}\n",
        ),
        ("strict.sql", &stream("")),
        ("lenient.sql", &stream(", 'json.lenient' = 'true'")),
        (
            "fail.sql",
            "CREATE STREAM s (i INT) WITH (connector = 'file', path = 'in.jsonl'); SELECT i FROM s;",
        ),
    ]);
    let out = eddy(&["run", "strict.sql", "--stats"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"x\":1,\"i\":2,\"d\":0.5}\n{\"x\":7,\"i\":null,\"d\":-0}\n"
    );
    assert!(
        text(&out.stderr).contains("4 malformed"),
        "{}",
        text(&out.stderr)
    );
    let out = eddy(&["run", "lenient.sql", "--stats"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"x\":1,\"i\":2,\"d\":0.5}\n{\"x\":2,\"i\":null,\"d\":null}\n{\"x\":null,\"i\":3,\"d\":null}\n{\"x\":null,\"i\":null,\"d\":null}\n{\"x\":7,\"i\":null,\"d\":-0}\n"
    );
    // two objects on a line are malformed either way
    assert!(
        text(&out.stderr).contains("1 malformed"),
        "{}",
        text(&out.stderr)
    );
    let out = eddy(&["run", "fail.sql"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("malformed record at line 3: column 'i' is INT but holds 3.7: not an integer"),
        "{err}"
    );
}

/// STDDEV of `[1e308, 1e308, -1e308]` was once 0 (its deviations overflowed).
#[test]
fn stddev_of_extreme_values_is_right() {
    let dir = files(&[
        (
            "in.jsonl",
            "{\"k\": 1, \"v\": 1e308}\n{\"k\": 1, \"v\": 1e308}\n{\"k\": 1, \"v\": -1e308}\n{\"k\": 2, \"v\": 1000000000000004}\n{\"k\": 2, \"v\": 1000000000000007}\n{\"k\": 2, \"v\": 1000000000000013}\n{\"k\": 2, \"v\": 1000000000000016}\n",
        ),
        (
            "q.sql",
            "CREATE STREAM s (k BIGINT, v DOUBLE) WITH (connector = 'file', path = 'in.jsonl');
             SELECT k, STDDEV(v) AS sd, VAR_SAMP(v) AS var FROM s GROUP BY k;",
        ),
    ]);
    let out = eddy(&["run", "q.sql"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let row = |k: i64| {
        rows.iter()
            .rev()
            .find(|r| r["k"] == k)
            .unwrap_or_else(|| panic!("group {k}: {rows:?}"))
    };
    let sd = row(1)["sd"].as_f64().expect("a number");
    let exact = (4.0f64 / 3.0).sqrt() * 1e308;
    assert!((sd - exact).abs() / exact < 1e-12, "{sd}");
    // its variance is past the DOUBLE range: NULL
    assert!(row(1)["var"].is_null(), "{rows:?}");
    // a large offset does not cost precision
    let var = row(2)["var"].as_f64().expect("a number");
    assert!((var - 30.0).abs() < 1e-9, "{var}");
}

/// A query whose window state grows without bound once ran the process out
/// of memory; past `--max-state-mib` it stops with a message.
#[test]
fn window_state_is_bounded_with_a_clear_error() {
    let rows: String = (0..100_000)
        .map(|i| {
            format!(
                "{{\"k\": \"key-{i}\", \"t\": {}}}\n",
                1_767_225_600_000i64 + i
            )
        })
        .collect();
    let dir = files(&[
        ("in.jsonl", &rows),
        (
            "q.sql",
            "CREATE STREAM s (k VARCHAR, t TIMESTAMP, WATERMARK FOR t AS t) WITH (connector = 'file', path = 'in.jsonl');
             SELECT k, window_start, COUNT(*) AS n FROM TUMBLE(s, t, INTERVAL '1' DAY) GROUP BY k, window_start, window_end;",
        ),
    ]);
    let out = eddy(
        &["run", "q.sql", "--partitions", "1", "--max-state-mib", "1"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("past this partition's limit of 1.0 MiB") && err.contains("--max-state-mib"),
        "{err}"
    );
    let out = eddy(&["run", "q.sql", "--partitions", "1"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 100_000);
    // an unwindowed GROUP BY keeps every group: bounded the same way
    std::fs::write(
        dir.path().join("global.sql"),
        "CREATE STREAM s (k VARCHAR, t TIMESTAMP) WITH (connector = 'file', path = 'in.jsonl');
         SELECT k, COUNT(*) AS n FROM s GROUP BY k;",
    )
    .unwrap();
    let out = eddy(
        &[
            "run",
            "global.sql",
            "--partitions",
            "2",
            "--max-state-mib",
            "1",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("group_aggregate: the state reached") && err.contains(" groups, past"),
        "{err}"
    );
}

/// Some syntax errors (nesting too deep, sqlparser messages without a
/// location) once had no line and column.
#[test]
fn every_syntax_error_has_a_position() {
    let deep = format!("SELECT {}1{} FROM s;", "ABS(".repeat(60), ")".repeat(60));
    let cases = [
        "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl');\nSELECT x FROM s WHERE;",
        "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl');\nSELECT x s GROUP BY;",
        "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl');\nSELECT CAST(x AS) FROM s;",
        "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl');\nSELECT x FROM s LIMIT;",
        &format!(
            "CREATE STREAM s (x BIGINT) WITH (connector = 'file', path = 'in.jsonl');\n{deep}"
        ),
    ];
    for (i, sql) in cases.iter().enumerate() {
        let dir = files(&[("q.sql", sql)]);
        let out = eddy(&["check", "q.sql"], dir.path());
        assert_eq!(out.status.code(), Some(1), "{sql}");
        let err = text(&out.stderr);
        assert!(
            err.contains(" at line 2, column ") && err.contains("hint:"),
            "case {i}: {sql}\n{err}"
        );
    }
}
