//! The UDF registry and its limits.

use std::path::Path;
use std::process::Command;

use super::*;

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

/// Each UDF instance once reserved 4 GiB of address space whatever
/// `--udf-memory-mib` said, so under `ulimit -v` no UDF query could run.
/// There the default reserves the limit only; `--udf-address-space` chooses.
#[test]
fn udf_queries_run_in_a_limited_address_space() {
    let data = tempfile::tempdir().unwrap();
    let dir = files(&[
        (
            "in.jsonl",
            "{\"k\": 1, \"v\": 3}\n{\"k\": 1, \"v\": 1}\n{\"k\": 1, \"v\": 2}\n",
        ),
        (
            "q.sql",
            "CREATE STREAM s (k BIGINT, v DOUBLE) WITH (connector = 'file', path = 'in.jsonl');
             SELECT k, median(v) AS m FROM s GROUP BY k;",
        ),
    ]);
    let d = data.path().to_str().unwrap();
    let stats = support::udf_wasm("stats");
    let reg = eddy(
        &["--data-dir", d, "udf", "register", stats.to_str().unwrap()],
        dir.path(),
    );
    assert!(reg.status.success(), "{}", text(&reg.stderr));
    // 3 GiB of address space: less than one guard-page instance needs
    let limited = |layout: &str| {
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "ulimit -v 3145728 && exec \"$0\" --data-dir \"$1\" --udf-memory-mib 16 --udf-address-space {layout} run --partitions 2 q.sql"
            ))
            .arg(env!("CARGO_BIN_EXE_eddy"))
            .arg(d)
            .current_dir(dir.path())
            .output()
            .expect("bash runs")
    };
    for layout in ["auto", "limit"] {
        let out = limited(layout);
        assert!(out.status.success(), "{layout}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout).lines().last(),
            Some("{\"_op\":\"+I\",\"k\":1,\"m\":2}")
        );
    }
    let out = limited("guard-pages");
    assert!(!out.status.success(), "4 GiB reservations fit in 3 GiB?");
    assert!(
        text(&out.stderr).contains("--udf-address-space limit"),
        "{}",
        text(&out.stderr)
    );
}
