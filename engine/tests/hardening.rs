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
    let input = format!("{deep}\n{{\"x\": 2, \"y\": 3}}\n[{}]\n", "[".repeat(d) + &"]".repeat(d));
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
    assert!(text(&out.stderr).contains("2 malformed"), "{}", text(&out.stderr));
    let out = eddy(&["run", "fail.sql"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("line 1") && err.contains("deeper than 1000 levels"), "{err}");
}
