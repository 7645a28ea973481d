//! SQL golden tests: every `tests/sql/*.sql` case runs through the public
//! API and its rendered output must equal the `.out` file beside it.
//!
//! Regenerate the expected files with `EDDY_BLESS=1 cargo test --test sql_golden`,
//! then read the diff before committing it; `EDDY_CASE=<name>` runs one file.

use std::path::Path;

#[test]
fn sql_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let bless = std::env::var_os("EDDY_BLESS").is_some();
    // `EDDY_CASE=decimal` runs tests/sql/decimal.sql alone
    let only = std::env::var("EDDY_CASE").ok();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/sql exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .filter(|p| {
            only.as_ref()
                .is_none_or(|o| p.file_stem().is_some_and(|s| s == o.as_str()))
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    // file paths in the cases are relative to the repository root
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).expect("chdir to the repo root");
    let mut failures = Vec::new();
    for case in &cases {
        let sql = std::fs::read_to_string(case).expect("read case");
        let actual = eddy_suite::run_case_file(&sql);
        let expected_path = case.with_extension("out");
        if bless {
            std::fs::write(&expected_path, &actual).expect("write expected output");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "--- {} (expected)\n{expected}\n+++ actual\n{actual}",
                expected_path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ (EDDY_BLESS=1 regenerates):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
