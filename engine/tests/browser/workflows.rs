//! One test per workflow of the web UI.

use super::*;

#[test]
fn uploading_a_module_shows_its_functions_and_try_calls_one() {
    let Some(ui) = Ui::open("udfs") else { return };
    ui.upload_stats();
    let result = ui.text("#upload-result");
    assert!(
        result.contains("registered stats") && result.contains("median(DOUBLE) -> DOUBLE"),
        "{result}"
    );
    let modules = ui.text("#modules");
    for sig in [
        "median(DOUBLE) -> DOUBLE",
        "p90(DOUBLE) -> DOUBLE",
        "percentile(DOUBLE, DOUBLE) -> DOUBLE",
    ] {
        assert!(modules.contains(sig), "{sig} missing from {modules}");
    }
    let row = |f: &str| {
        ui.eval(&format!(
            "[...document.querySelectorAll('#modules tr.function')].map((r) => r.innerText).find((t) => t.startsWith('{f}(')) || ''"
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    };
    assert!(
        row("median").contains("aggregate, retract: yes"),
        "{}",
        row("median")
    );
    assert!(
        row("p90").contains("aggregate, retract: no"),
        "{}",
        row("p90")
    );
    // the module's sha256 as shown is that of the file
    let sha = ui.served.get("/api/udfs");
    let listed: Value = serde_json::from_str(&sha).expect("JSON");
    let sha = listed[0]["sha256"].as_str().expect("a sha256").to_string();
    assert!(modules.contains(&sha), "{modules}");
    // the module panel fits the page
    let (l, _, r, _) = ui.rect("#modules .module");
    let width = ui
        .eval("document.documentElement.clientWidth")
        .as_f64()
        .unwrap();
    assert!(
        l >= 0.0 && r <= width,
        "module panel {l}..{r} outside 0..{width}"
    );
    // try-it: the median of 1, 2, 3, 4, 10 is 3
    ui.click("[data-try='stats.median']");
    ui.wait_for("#try:not([hidden])");
    ui.eval("(() => { const t = document.getElementById('try-rows'); t.value = '1\\n2\\n3\\n4\\n10'; return true; })()");
    ui.click("#try-call");
    ui.wait_for("#try-cost");
    assert_eq!(ui.text("#try-result .try-value"), "3");
    let cost = ui.text("#try-cost");
    assert!(cost.contains("µs") && cost.contains("MiB of"), "{cost}");
    // a scalar on text: geo's functions are not here, but a bad row is an error
    ui.eval("(() => { const t = document.getElementById('try-rows'); t.value = 'not a number'; return true; })()");
    ui.click("#try-call");
    ui.wait_for("#try-result .error");
    let err = ui.text("#try-result .error");
    assert!(err.contains("row 1: argument 1 is DOUBLE"), "{err}");
    ui.shot("udfs");
}

#[test]
fn a_bad_file_shows_the_registry_message() {
    let Some(ui) = Ui::open("bad-file") else {
        return;
    };
    let bad = ui._dir.path().join("notes.wasm");
    std::fs::write(&bad, b"these are notes, not WebAssembly").expect("written");
    ui.upload(&bad);
    ui.wait_for("#upload-result .error");
    let shown = ui.text("#upload-result .error");
    assert!(
        shown.contains("not a valid WebAssembly module") && shown.contains("hint:"),
        "{shown}"
    );
    // the registry's own words, verbatim: the same text the API returns
    let api = ui.served.call(
        "POST",
        "/api/udfs/notes2",
        Some(b"these are notes, not WebAssembly"),
        "application/wasm",
    );
    let api: Value = serde_json::from_str(&api).expect("JSON");
    let words = api["error"].as_str().expect("an error");
    let words = words.split_once(": ").map_or(words, |(_, w)| w);
    assert!(shown.contains(words), "{shown} vs {words}");
    assert!(ui.text("#modules").contains("No modules yet"));
    ui.shot("bad-file");
}

#[test]
fn the_editor_completes_median_and_marks_a_typo_where_it_is() {
    let Some(ui) = Ui::open("editor") else { return };
    ui.upload_stats();
    ui.go("#/new");
    let start = format!("{}SELECT window_start, ", bids("100000"));
    ui.write_sql(&start);
    // the check has told the editor the stream's columns
    ui.until(
        "the check",
        "document.getElementById('check').innerText.includes('ok')",
    );
    ui.eval("(() => { const t = document.querySelector('.editor-input'); t.focus(); t.setSelectionRange(t.value.length, t.value.length); return true; })()");
    ui.tab.type_str("medi").expect("typed");
    ui.wait_for("#completions:not([hidden]) li[data-name='median']");
    let offered = ui.text("#completions");
    assert!(
        offered.contains("median") && offered.contains("wasm stats"),
        "{offered}"
    );
    // the menu sits under the caret, inside the editor's width
    let (ml, mt, _, _) = ui.rect("#completions");
    let (el, et, er, eb) = ui.rect(".editor");
    assert!(
        ml >= el && ml < er && mt > et && mt < eb + 40.0,
        "menu at {ml},{mt} vs editor {el},{et},{er},{eb}"
    );
    ui.shot("completion");
    ui.tab.press_key("Enter").expect("accepts");
    let text = ui.eval("document.querySelector('.editor-input').value");
    assert!(text.as_str().unwrap().ends_with("median("), "{text}");
    // a typo: marked at its line and column, with the planner's hint
    let typo = format!(
        "{}SELECT window_start,\n  medain(CAST(price AS DOUBLE)) AS m\nFROM TUMBLE(bids, date_time, INTERVAL '1' SECOND)\nGROUP BY window_start, window_end;",
        bids("100000")
    );
    ui.write_sql(&typo);
    // the mark of the text before (a check still on its way) may show first
    ui.until(
        "the typo marked",
        "(() => { const e = document.querySelector('.editor-layer .err'); return !!e && e.innerText === 'medain'; })()",
    );
    assert_eq!(ui.text(".editor-layer .err"), "medain");
    let status = ui.text("#check");
    assert!(
        status.contains("medain") && status.contains("median"),
        "{status}"
    );
    // where the mark is drawn: line 5, column 3 of the text
    let at = ui.eval(
        "(() => { const e = document.querySelector('.editor-input'); const s = getComputedStyle(e);
          const m = document.querySelector('.editor-layer .err').getBoundingClientRect();
          const b = e.getBoundingClientRect();
          const line = (m.top - b.top - parseFloat(s.paddingTop) + e.scrollTop) / parseFloat(s.lineHeight) + 1;
          const col = (m.left - b.left - parseFloat(s.paddingLeft)) / (m.width / 6) + 1;
          return [line, col]; })()",
    );
    let (line, col) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
    assert!(
        (line - 5.0).abs() < 0.3 && (col - 3.0).abs() < 0.3,
        "mark at line {line}, column {col}"
    );
    ui.shot("typo");
}

#[test]
fn explain_draws_the_plan_with_the_wasm_node_inside_its_panel() {
    let Some(ui) = Ui::open("explain") else {
        return;
    };
    ui.upload_stats();
    ui.go("#/new");
    ui.write_sql(&format!("{}{MEDIAN_QUERY}", bids("100000")));
    ui.click("#explain");
    ui.wait_for("#plan svg .node");
    let kinds = ui.eval("[...document.querySelectorAll('#plan .node')].map((n) => n.dataset.kind)");
    let kinds: Vec<&str> = kinds
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(kinds.first(), Some(&"Source"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"Sink"), "{kinds:?}");
    assert!(
        kinds.contains(&"TumblingWindowAggregate") && kinds.contains(&"Watermark"),
        "{kinds:?}"
    );
    let wasm = ui.eval("[...document.querySelectorAll('#plan .node.wasm')].map((n) => [n.dataset.kind, n.textContent])");
    let wasm = wasm.as_array().unwrap();
    assert_eq!(wasm.len(), 1, "one WASM node: {wasm:?}");
    assert_eq!(wasm[0][0], "TumblingWindowAggregate");
    let text = wasm[0][1].as_str().unwrap();
    assert!(text.contains("WASM") && text.contains("median"), "{text}");
    // with the module it comes from and the start of its sha256
    let modules: Value = serde_json::from_str(&ui.served.get("/api/udfs")).expect("JSON");
    let sha = modules[0]["sha256"].as_str().expect("sha256");
    assert!(
        text.contains(&format!("module stats, sha256 {}", &sha[..12])),
        "{text}"
    );
    // every node inside the panel, nodes one under the other, none overlapping
    let (pl, pt, pr, _) = ui.rect("#plan");
    let boxes = ui.eval("[...document.querySelectorAll('#plan .node rect')].map((n) => { const r = n.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })");
    let boxes: Vec<Vec<f64>> = boxes
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            b.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(boxes.len(), kinds.len());
    for (b, k) in boxes.iter().zip(&kinds) {
        assert!(
            b[0] >= pl - 0.5 && b[2] <= pr + 0.5 && b[1] >= pt,
            "{k} at {b:?} outside the panel {pl}..{pr}"
        );
        assert!(
            b[2] - b[0] > 100.0 && b[3] - b[1] > 20.0,
            "{k} too small: {b:?}"
        );
    }
    for w in boxes.windows(2) {
        assert!(w[1][1] >= w[0][3], "nodes overlap: {w:?}");
    }
    ui.shot("explain");
}

#[test]
fn a_started_query_shows_live_rows_that_match_eddy_run() {
    let Some(ui) = Ui::open("running-query") else {
        return;
    };
    ui.upload_stats();
    // 8 s of paced events: the CLI runs the same script meanwhile
    let sql = format!("{}{MEDIAN_QUERY}", bids("16000"));
    let registered = support::udf_wasm("stats");
    let cli = {
        let sql = sql.clone();
        std::thread::spawn(move || {
            // eddy run calls the module from its own registry
            let dir = tempfile::tempdir().expect("temp dir");
            let data = dir.path().join("data");
            let reg = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
                .arg("--data-dir")
                .arg(&data)
                .args(["udf", "register"])
                .arg(&registered)
                .output()
                .expect("eddy udf register");
            assert!(
                reg.status.success(),
                "{}",
                String::from_utf8_lossy(&reg.stderr)
            );
            cli_rows_in(&data, &sql)
        })
    };
    ui.go("#/new");
    ui.write_sql(&sql);
    ui.eval("(() => { document.getElementById('name').value = 'live'; return true; })()");
    ui.click("#start");
    ui.until("the query page", "location.hash === '#/query/live'");
    ui.wait_for("#results tbody tr");
    // live numbers on the plan and the event-time strip
    ui.until(
        "live node numbers",
        "[...document.querySelectorAll('#plan text.live')].some((t) => /rows · [0-9,]+\\/s/.test(t.textContent))",
    );
    ui.until(
        "the event-time strip",
        "!!document.querySelector('#strip svg .wm')",
    );
    let caption = ui.text("#strip-caption");
    assert!(
        caption.contains("watermark") && caption.contains("open windows"),
        "{caption}"
    );
    let (sl, _, sr, _) = ui.rect("#strip svg");
    let (pl, _, pr, _) = ui.rect("#strip");
    assert!(
        sl >= pl - 0.5 && sr <= pr + 0.5,
        "strip {sl}..{sr} outside {pl}..{pr}"
    );
    // a few windows in: the picture the README shows
    ui.until(
        "four windows",
        "document.querySelectorAll('#results tbody tr').length >= 4",
    );
    let shot = ui.shot("running");
    if std::env::var_os("EDDY_README_SCREENSHOT").is_some() {
        let readme =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/images/running-query.png");
        std::fs::create_dir_all(readme.parent().unwrap()).expect("docs/images");
        std::fs::copy(&shot, &readme).expect("README screenshot");
    }
    ui.until(
        "the query's end",
        "document.getElementById('status').innerText === 'finished'",
    );
    let shown = ui.eval(
        "(() => { const h = [...document.querySelectorAll('#results thead th')].map((c) => c.innerText);
          return [...document.querySelectorAll('#results tbody tr')].reverse()
            .map((r) => Object.fromEntries([...r.children].map((c, i) => [h[i], c.innerText]))); })()",
    );
    let shown: Vec<BTreeMap<String, String>> = serde_json::from_value(shown).expect("rows");
    let expected = cli.join().expect("the CLI run");
    assert!(expected.len() >= 6, "{expected:?}");
    assert_eq!(shown, expected, "the page's rows differ from eddy run's");
    assert_eq!(ui.text("#skipped"), "", "no row skipped");
    ui.shot("finished");
}

/// `eddy run`'s rows of a script, as the page shows cells (NULL for null).
fn cli_rows_in(data: &std::path::Path, sql: &str) -> Vec<BTreeMap<String, String>> {
    let script = data.with_file_name("q.sql");
    std::fs::write(&script, sql).expect("script");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .arg("--data-dir")
        .arg(data)
        .arg("run")
        .arg(&script)
        .output()
        .expect("eddy run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let v: serde_json::Map<String, Value> = serde_json::from_str(l).expect("a JSON row");
            v.into_iter()
                .map(|(k, x)| {
                    let cell = match x {
                        Value::Null => "NULL".to_string(),
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, cell)
                })
                .collect()
        })
        .collect()
}

#[test]
fn stop_ends_a_running_query() {
    let Some(ui) = Ui::open("stop") else { return };
    ui.go("#/new");
    ui.write_sql(&format!(
        "{}SELECT auction, price FROM bids WHERE price > 1000;",
        bids("100000000")
    ));
    ui.eval("(() => { document.getElementById('name').value = 'endless'; return true; })()");
    ui.click("#start");
    ui.until("the query page", "location.hash === '#/query/endless'");
    ui.wait_for("#results tbody tr");
    ui.click("#pause");
    let before = ui.eval("document.querySelectorAll('#results tbody tr').length");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        ui.eval("document.querySelectorAll('#results tbody tr').length"),
        before,
        "paused"
    );
    // the server checkpoints its queries: a line under the progress table
    // says when last
    ui.until(
        "the last checkpoint under the progress table",
        "(document.getElementById('checkpoint') || {innerText: ''}).innerText.includes('last checkpoint #')",
    );
    // the line sits inside the progress panel, under the table, and the
    // table does not overflow the panel
    let panel = ui.rect("#progress");
    let table = ui.rect("#progress table");
    let line = ui.rect("#checkpoint");
    assert!(
        line.1 >= table.3 - 1.0,
        "under the table: {line:?} {table:?}"
    );
    for r in [table, line] {
        assert!(
            r.0 >= panel.0 - 1.0 && r.2 <= panel.2 + 1.0 && r.3 <= panel.3 + 1.0,
            "inside the panel {panel:?}: {r:?}"
        );
        assert!(r.2 - r.0 > 100.0 && r.3 - r.1 > 10.0, "drawn: {r:?}");
    }
    ui.shot("checkpointed");
    ui.click("#stop");
    ui.until(
        "stopped",
        "document.getElementById('status').innerText === 'stopped'",
    );
    let api: Value = serde_json::from_str(&ui.served.get("/api/queries/endless")).expect("JSON");
    assert_eq!(api["status"], "stopped");
    assert!(
        api["checkpoints"]["last"]["id"].as_u64() >= Some(1),
        "{api}"
    );
    ui.go("#/queries");
    ui.until(
        "the list",
        "document.getElementById('queries').innerText.includes('stopped')",
    );
    ui.shot("stopped");
}

#[test]
fn emit_changes_shows_the_changelog_and_the_result_it_builds() {
    let Some(ui) = Ui::open("changelog") else {
        return;
    };
    ui.go("#/new");
    ui.write_sql(&format!(
        "{}SELECT window_start, COUNT(*) AS bids
FROM TUMBLE(bids, date_time, INTERVAL '2' SECOND)
GROUP BY window_start, window_end EMIT CHANGES;",
        bids("100000000")
    ));
    ui.eval("(() => { document.getElementById('name').value = 'changes'; return true; })()");
    ui.click("#start");
    ui.until("the query page", "location.hash === '#/query/changes'");
    // an update retracts the old count (−) and adds the new one (+)
    ui.wait_for("#changelog tbody tr.minus");
    ui.wait_for("#changelog tbody tr.plus");
    ui.click("#pause");
    let applied = ui.eval(
        "[...document.querySelectorAll('#applied tbody tr')].map((r) => r.children[0].innerText)",
    );
    let starts: Vec<String> = serde_json::from_value(applied).expect("rows");
    let mut unique = starts.clone();
    unique.sort();
    unique.dedup();
    assert!(!starts.is_empty());
    assert_eq!(
        unique.len(),
        starts.len(),
        "one row per window once changes apply: {starts:?}"
    );
    let signs = ui.text("#changelog tbody");
    assert!(signs.contains('−') && signs.contains('+'), "{signs}");
    ui.shot("changelog");
    ui.click("#stop");
    ui.until(
        "stopped",
        "document.getElementById('status').innerText === 'stopped'",
    );
}
