//! Helpers shared by the integration tests and benches: running SQL cases
//! and rendering their results as readable text for golden files.

pub mod bench;
pub mod broker_process;
pub mod encoders;
pub mod http;
pub mod kafka;
pub mod registry;

use std::fmt::Write as _;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use eddy::types::{SqlType, format_timestamp_ms};
use eddy::{QueryStats, RunOptions};

/// Renders batches as a header line plus one ` | `-separated line per row.
/// NULL prints as `NULL`, TIMESTAMP as RFC 3339 UTC.
pub fn format_rows(schema: &arrow::datatypes::Schema, batches: &[RecordBatch]) -> String {
    let mut out = String::new();
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f.name(),
                SqlType::from_arrow(f.data_type()).map_or("?".into(), |t| t.to_string())
            )
        })
        .collect();
    let _ = writeln!(out, "{}", header.join(" | "));
    for b in batches {
        let columns: Vec<Vec<String>> = b
            .columns()
            .iter()
            .map(|c| format_column(c.as_ref()))
            .collect();
        for row in 0..b.num_rows() {
            let cells: Vec<&str> = columns.iter().map(|c| c[row].as_str()).collect();
            let _ = writeln!(out, "{}", cells.join(" | "));
        }
    }
    out
}

fn format_column(c: &dyn Array) -> Vec<String> {
    if let DataType::Timestamp(TimeUnit::Millisecond, None) = c.data_type() {
        let ts = c.as_primitive::<TimestampMillisecondType>();
        return (0..c.len())
            .map(|i| {
                if ts.is_null(i) {
                    "NULL".to_string()
                } else {
                    format_timestamp_ms(ts.value(i))
                }
            })
            .collect();
    }
    let options = FormatOptions::default().with_null("NULL");
    match ArrayFormatter::try_new(c, &options) {
        Ok(f) => (0..c.len()).map(|i| f.value(i).to_string()).collect(),
        Err(e) => vec![format!("<{e}>"); c.len()],
    }
}

/// Starts `plan` as a job of its own writing rows to `sink` (default options).
pub fn start_job(
    plan: &eddy::PhysicalPlan,
    sink: Box<dyn eddy::connectors::Sink>,
) -> eddy::JobHandle {
    eddy::JobManager::new()
        .submit(eddy::JobSpec::new("test", plan.clone()).sink(sink))
        .expect("the job starts")
}

/// Options a case file sets in `-- key: value` header lines.
#[derive(Debug, Clone)]
pub struct CaseOptions {
    /// Rows per source batch (default 1: every row is its own batch, so the
    /// watermark advances row by row as in a live stream).
    pub batch_size: usize,
}

impl CaseOptions {
    /// Reads `-- batch_size: N` from a script's comment lines.
    pub fn from_script(sql: &str) -> Self {
        let mut o = CaseOptions { batch_size: 1 };
        for line in sql.lines() {
            let value = line
                .trim()
                .strip_prefix("-- batch_size:")
                .and_then(|v| v.trim().parse().ok());
            if let Some(n) = value {
                o.batch_size = n;
            }
        }
        o
    }
}

/// Runs every query and explain of a script and renders the outcome: the
/// plan text for EXPLAIN, rows and a stats line for a query, or the error.
pub fn run_script(sql: &str) -> String {
    let options = CaseOptions::from_script(sql);
    let script = match eddy::plan_script(sql) {
        Ok(s) => s,
        Err(e) => return format!("error: {e}\n"),
    };
    let mut out = String::new();
    for plan in &script.explains {
        out.push_str(&plan.explain_text());
    }
    for plan in &script.queries {
        let one = run_query(plan, options.batch_size, 1);
        // the same rows (as a multiset) with the keyed state split over 4 workers
        let four = run_query(plan, options.batch_size, 4);
        let same = if plan.output_schema.index_of("_op").is_ok() {
            applied(&one) == applied(&four)
        } else {
            sorted_lines(&one) == sorted_lines(&four)
        };
        if !same {
            let _ = writeln!(
                out,
                "-- partitions=4 differs from partitions=1:\n{four}-- end of partitions=4"
            );
        }
        let changelog = plan.output_schema.index_of("_op").is_ok();
        if plan.branches.is_empty() {
            out.push_str(&one);
        } else if changelog {
            // how the streams interleave decides the steps, not the table
            out.push_str("-- changelog applied (rows sorted): several streams interleave\n");
            out.push_str(&applied(&one));
        } else {
            // rows of several streams come in the order the streams are read
            out.push_str("-- rows sorted: several streams interleave\n");
            out.push_str(&sort_rows(&one));
        }
    }
    out
}

/// A rendered changelog (`_op` first) applied: the header line without
/// `_op`, the rows left once `+I`/`+U` add a row and `-U`/`-D` take one
/// back (sorted), and the `--` lines but the counts of rows out; a
/// withdrawn row that is not there is shown as an error.
fn applied(text: &str) -> String {
    let mut lines = text.lines();
    let Some(header) = lines.next().filter(|h| h.starts_with("_op ")) else {
        return text.to_string();
    };
    let strip = |l: &str| {
        l.split_once(" | ")
            .map(|(_, r)| r.to_string())
            .unwrap_or_default()
    };
    let mut rows: Vec<String> = Vec::new();
    let mut tail = Vec::new();
    for l in lines {
        if l.starts_with("--") {
            let kept: Vec<&str> = l.split(' ').filter(|w| !w.starts_with("out=")).collect();
            tail.push(kept.join(" "));
            continue;
        }
        let row = strip(l);
        if l.starts_with("+I") || l.starts_with("+U") {
            rows.push(row);
        } else if let Some(i) = rows.iter().position(|r| *r == row) {
            rows.swap_remove(i);
        } else {
            tail.push(format!("-- withdrawn but never added: {row}"));
        }
    }
    rows.sort_unstable();
    let mut out = format!("{}\n", strip(header));
    for l in rows.iter().chain(&tail) {
        let _ = writeln!(out, "{l}");
    }
    out
}

/// The header line, the row lines sorted, then the `--` lines.
fn sort_rows(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let tail = lines
        .iter()
        .rev()
        .take_while(|l| l.starts_with("--"))
        .count();
    let end = lines.len() - tail;
    if end > 1 {
        lines[1..end].sort_unstable();
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Runs one query and renders its rows, dead letters and stats.
pub fn run_query(plan: &eddy::PhysicalPlan, batch_size: usize, partitions: usize) -> String {
    let run = RunOptions {
        batch_size,
        partitions,
        ..RunOptions::default()
    };
    let mut out = String::new();
    match eddy::collect_all(plan, &run) {
        Ok(c) => {
            out.push_str(&format_rows(&plan.output_schema, &c.batches));
            for d in &c.dead_letters {
                let _ = writeln!(out, "-- dead letter: {d}");
            }
            out.push_str(&stats_line(&c.stats));
        }
        Err(e) => {
            let _ = writeln!(out, "runtime error: {e}");
        }
    }
    out
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

/// `-- stats: in=N out=N late=N null_time=N malformed=N`, plus
/// `late_accepted=N dead_letters=N` when either is not zero.
pub fn stats_line(s: &QueryStats) -> String {
    let mut line = format!(
        "-- stats: in={} out={} late={} null_time={} malformed={}",
        s.records_in, s.records_out, s.late_dropped, s.null_time_dropped, s.malformed
    );
    if s.late_accepted > 0 || s.dead_letters > 0 {
        let _ = write!(
            line,
            " late_accepted={} dead_letters={}",
            s.late_accepted, s.dead_letters
        );
    }
    line.push('\n');
    line
}

/// Splits a case file into independent scripts at lines starting with
/// `-- case`: each case runs together with the lines before the first case
/// (the shared preamble) and is rendered under its `-- case` line. Lines of
/// other cases are blanked, so error positions are those of the file. A file
/// without `-- case` lines is one script.
pub fn run_case_file(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("-- case"))
        .collect();
    if starts.is_empty() {
        return run_script(text);
    }
    let mut out = String::new();
    for (k, &first) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(lines.len());
        let script: Vec<&str> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i < starts[0] || (i > first && i < end) {
                    *l
                } else {
                    ""
                }
            })
            .collect();
        let _ = writeln!(out, "{}", lines[first]);
        out.push_str(&run_script(&script.join("\n")));
    }
    out
}

/// Builds `examples-udf` (release, wasm32-unknown-unknown) from source once
/// per test binary and returns the path of module `name` (`geo`, `hostile`,
/// `wrong_abi`).
pub fn udf_wasm(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let root =
            eddy::udf::examples::examples_dir(here).expect("examples-udf/ beside the workspace");
        eddy::udf::examples::build_examples(&root).unwrap_or_else(|e| panic!("{e}"))
    });
    dir.join(format!("{name}.wasm"))
}
