//! The web UI in a real headless Chromium (Debian's `chromium`, driven over
//! the DevTools protocol by the `headless_chrome` crate) against a real
//! `eddy serve` process: one test per workflow — upload a module and see its
//! signatures (and try one), a bad file and the registry's message, the
//! editor's completion and error mark, EXPLAIN's graph inside its panel, a
//! started query's live rows against the same query run by `eddy run`, and
//! stop. Layout is asserted with bounding boxes; each page's screenshot is
//! saved under `$CARGO_TARGET_TMPDIR/ui-screenshots/`.
//!
//! Without a browser the tests say they skipped; `EDDY_BROWSER_TESTS=required`
//! (set by `.ci/run`, which installs chromium) makes a missing browser fail.
//! `EDDY_README_SCREENSHOT=1` also writes the running-query page to
//! `docs/images/running-query.png`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;

#[path = "../../../tests/support/lib.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
#[path = "../served/mod.rs"]
mod served;
use served::Served;

/// One browser test at a time: each runs a server and a browser, and two
/// cores are shared with the rest of the suite.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A paced generator (event time follows the wall clock), `events` events.
fn bids(events: &str) -> String {
    format!(
        "CREATE STREAM bids (auction BIGINT, price BIGINT, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
WITH (connector = 'nexmark', events = '{events}', rate = '2000', realtime = 'true');
"
    )
}

const MEDIAN_QUERY: &str = "SELECT window_start, COUNT(*) AS bids, median(CAST(price AS DOUBLE)) AS median_price, MAX(price) AS top
FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND)
GROUP BY window_start, window_end;";

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("EDDY_CHROME") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// A server, a browser logged in to it, and where screenshots go.
struct Ui {
    served: Served,
    tab: Arc<Tab>,
    test: &'static str,
    _browser: Browser,
    _dir: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl Ui {
    /// `None` (the test skips) when there is no browser and none is required.
    fn open(test: &'static str) -> Option<Self> {
        let serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let Some(path) = chromium() else {
            assert!(
                std::env::var("EDDY_BROWSER_TESTS").as_deref() != Ok("required"),
                "EDDY_BROWSER_TESTS=required but no chromium on PATH (apt-get install -y chromium, or set EDDY_CHROME)"
            );
            eprintln!(
                "{test}: skipped, no chromium on PATH (apt-get install -y chromium, or set EDDY_CHROME)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        // queries checkpoint (the query page shows the last checkpoint)
        let chk = dir.path().join("chk");
        let served = Served::start(
            &dir.path().join("data"),
            &[
                "--partitions",
                "1",
                "--checkpoint-dir",
                chk.to_str().expect("utf-8 path"),
                "--checkpoint-interval",
                "200ms",
            ],
        );
        let options = LaunchOptions::default_builder()
            .path(Some(path))
            // as root in a container there is no user namespace for the sandbox
            .sandbox(false)
            .window_size(Some((1400, 1000)))
            .idle_browser_timeout(Duration::from_secs(300))
            .build()
            .expect("launch options");
        let browser = Browser::new(options).expect("chromium starts");
        let tab = browser.new_tab().expect("a tab");
        tab.set_default_timeout(Duration::from_secs(30));
        tab.navigate_to(&format!("{}&next=/%23/queries", served.login))
            .expect("logs in");
        tab.wait_until_navigated().expect("the UI loads");
        let ui = Self {
            served,
            tab,
            test,
            _browser: browser,
            _dir: dir,
            _serial: serial,
        };
        ui.wait_for("#queries");
        Some(ui)
    }

    /// Evaluates a JavaScript expression; its value as JSON.
    fn eval(&self, js: &str) -> Value {
        let r = self
            .tab
            .evaluate(&format!("JSON.stringify(({js}))"), false)
            .unwrap_or_else(|e| panic!("{js}: {e}"));
        match r.value {
            Some(Value::String(s)) => serde_json::from_str(&s).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Waits (up to 60 s) until `js` is true.
    fn until(&self, what: &str, js: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.eval(js) != Value::Bool(true) {
            if Instant::now() > deadline {
                self.shot("timeout");
                panic!(
                    "timed out waiting for {what} ({js}); page text: {}",
                    self.eval("document.body.innerText")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for(&self, selector: &str) {
        self.until(
            selector,
            &format!("!!document.querySelector({})", serde_json::json!(selector)),
        );
    }

    fn go(&self, page: &str) {
        self.eval(&format!("location.hash = {}", serde_json::json!(page)));
    }

    fn click(&self, selector: &str) {
        self.wait_for(selector);
        self.tab
            .find_element(selector)
            .and_then(|e| e.click().map(|_| ()))
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    fn text(&self, selector: &str) -> String {
        self.eval(&format!(
            "(document.querySelector({}) || {{}}).innerText || ''",
            serde_json::json!(selector)
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// The bounding box of the first element matching `selector`:
    /// (left, top, right, bottom) in CSS pixels.
    fn rect(&self, selector: &str) -> (f64, f64, f64, f64) {
        let v = self.eval(&format!(
            "(() => {{ const r = document.querySelector({}).getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }})()",
            serde_json::json!(selector)
        ));
        let n = |i: usize| v[i].as_f64().unwrap_or(f64::NAN);
        (n(0), n(1), n(2), n(3))
    }

    /// Saves a screenshot of the page as `<test>-<name>.png`.
    fn shot(&self, name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let file = dir.join(format!("{}-{name}.png", self.test));
        let png = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .expect("a screenshot");
        std::fs::write(&file, png).expect("screenshot written");
        eprintln!("screenshot: {}", file.display());
        file
    }

    /// Uploads a module through the page's file picker.
    fn upload(&self, file: &std::path::Path) {
        self.go("#/udfs");
        self.wait_for("#wasm-file");
        self.eval("document.getElementById('upload-result').replaceChildren()");
        self.tab
            .find_element("#wasm-file")
            .and_then(|e| {
                e.set_input_files(&[file.to_str().expect("utf-8 path")])
                    .map(|_| ())
            })
            .expect("file chosen");
        // (setting the files fires the input's change event)
        self.wait_for("#upload-result > *");
    }

    fn upload_stats(&self) {
        self.upload(&support::udf_wasm("stats"));
        self.until(
            "the stats module",
            "document.getElementById('modules').innerText.includes('median(DOUBLE)')",
        );
    }

    /// Writes `sql` into the editor as if typed (an input event follows).
    fn write_sql(&self, sql: &str) {
        self.wait_for(".editor-input");
        self.eval(&format!(
            "(() => {{ const t = document.querySelector('.editor-input'); t.value = {}; t.dispatchEvent(new Event('input')); return true; }})()",
            serde_json::json!(sql)
        ));
    }
}

mod workflows;
