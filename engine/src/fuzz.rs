//! A seeded fuzz suite over the three front doors hostile input comes
//! through: the SQL front end (`check` of mutated and generated scripts,
//! flat operator chains and deep nesting included), the JSON decoder
//! (arbitrary bytes, mutated records, deep nesting) and the UDF registry
//! (arbitrary and mutated module bytes). Every case must give a result or
//! an error — never a panic, an abort or a hang.
//!
//! It runs in `cargo test` with a few thousand cases (seconds). Longer:
//! `EDDY_FUZZ_ITERS=200000 EDDY_FUZZ_SEED=7 cargo test -p eddy --release --lib fuzz`
//! (docs/operations.md). A failing case prints its seed and input.

use std::panic::AssertUnwindSafe;

/// A small deterministic generator (PCG-style LCG): the same seed gives
/// the same cases on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 17
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn iterations(default: usize) -> usize {
    std::env::var("EDDY_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    std::env::var("EDDY_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x00ed_d1e5)
}

/// Runs `case` on a thread with the stack the CLI and the server plan on
/// (a panic is reported with the input that caused it).
fn no_panic(what: &str, input: &[u8], case: impl FnOnce() + Send) {
    std::thread::scope(|s| {
        let ran = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn_scoped(s, move || std::panic::catch_unwind(AssertUnwindSafe(case)))
            .expect("a fuzz thread")
            .join()
            .expect("joined");
        if ran.is_err() {
            let shown = String::from_utf8_lossy(&input[..input.len().min(2000)]);
            panic!(
                "{what} panicked on input ({} bytes): {shown:?}",
                input.len()
            );
        }
    });
}

/// Changes `bytes` a few times: delete, duplicate or overwrite a span,
/// insert a fragment.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, fragments: &[&str]) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if !bytes.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            1 if !bytes.is_empty() => {
                let end = (at + 1 + rng.below(32)).min(bytes.len());
                let span: Vec<u8> = bytes[at.min(end)..end].to_vec();
                bytes.splice(at..at, span);
            }
            2 if at < bytes.len() => bytes[at] = rng.next() as u8,
            _ => {
                let f = rng.pick(fragments).as_bytes().to_vec();
                bytes.splice(at..at, f);
            }
        }
    }
}

const SQL_SEEDS: &[&str] = &[
    include_str!("../../tests/sql/tumble_basic.sql"),
    include_str!("../../tests/sql/hop.sql"),
    include_str!("../../tests/sql/session.sql"),
    include_str!("../../tests/sql/over.sql"),
    include_str!("../../tests/sql/top_n.sql"),
    include_str!("../../tests/sql/emit_changes.sql"),
    include_str!("../../tests/sql/lateness.sql"),
    include_str!("../../tests/sql/errors.sql"),
];

const SQL_FRAGMENTS: &[&str] = &[
    "(",
    ")",
    ",",
    ";",
    "'",
    "\"",
    " + ",
    " * ",
    " || ",
    " AND ",
    " OR ",
    " NOT ",
    "NULL",
    "SELECT ",
    " FROM ",
    " WHERE ",
    " GROUP BY ",
    " HAVING ",
    " OVER (",
    " PARTITION BY ",
    " ROWS BETWEEN ",
    " EMIT CHANGES",
    " INTERVAL '1' DAY",
    " CAST(",
    " AS DOUBLE)",
    " CASE WHEN ",
    " THEN ",
    " END",
    "TUMBLE(",
    "HOP(",
    "SESSION(",
    "DESCRIPTOR(",
    "TABLE ",
    " WINDOW ",
    "COUNT(*)",
    "median(",
    "9223372036854775807",
    "-9223372036854775808",
    "1e400",
    "'\u{1b}[2J'",
    "\u{0}",
    "é",
    "--",
    "/*",
    "*/",
    " IN (",
    " BETWEEN ",
    " LIKE ",
    " IS NULL",
    "TIMESTAMP '2026-01-01 00:00:00'",
];

/// Long flat chains and deep nesting, generated.
fn generated_sql(rng: &mut Rng) -> String {
    let stream = "CREATE STREAM s (x BIGINT, v VARCHAR, b BOOLEAN, t TIMESTAMP, \
                  WATERMARK FOR t AS t) WITH (connector = 'file', path = 'in.jsonl');\n";
    let n = rng.below(3000);
    let expr = match rng.below(5) {
        0 => format!("x{}", " + 1".repeat(n)),
        1 => (0..n.max(1))
            .map(|i| format!("x = {i}"))
            .collect::<Vec<_>>()
            .join(" OR "),
        2 => format!("{}x{}", "(".repeat(n % 300), ")".repeat(n % 300)),
        3 => format!("{}x{}", "abs(".repeat(n % 300), ")".repeat(n % 300)),
        _ => {
            let ops = [
                " + ", " - ", " * ", " / ", " % ", " = ", " < ", " AND ", " OR ", " || ",
            ];
            let mut e = String::from("x");
            for _ in 0..n {
                let operands = ["x", "1", "v", "b", "NULL", "(x)", "-x", "NOT b"];
                let op = *rng.pick(&ops);
                e.push_str(op);
                let operand = *rng.pick(&operands);
                e.push_str(operand);
            }
            e
        }
    };
    format!("{stream}SELECT {expr} AS y FROM s;")
}

#[test]
fn sql_front_end_never_panics() {
    let mut rng = Rng(seed());
    for _ in 0..iterations(1500) {
        let sql = if rng.below(4) == 0 {
            generated_sql(&mut rng)
        } else {
            let mut bytes = rng.pick(SQL_SEEDS).as_bytes().to_vec();
            mutate(&mut rng, &mut bytes, SQL_FRAGMENTS);
            String::from_utf8_lossy(&bytes).into_owned()
        };
        no_panic("planning", sql.as_bytes(), || {
            let _ = crate::plan_script(&sql);
        });
    }
}

const JSON_FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "1e400",
    "-0",
    "9223372036854775808",
    "\"2026-01-01T00:00:00Z\"",
    "\n",
    "\u{feff}",
    "\u{1b}",
    "{\"x\":",
];

#[test]
fn json_decoder_never_panics() {
    use crate::connectors::json::{JsonDecoder, OnError};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("x", DataType::Int64, true),
        Field::new("d", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]));
    let valid =
        "{\"x\": 1, \"d\": 2.5, \"s\": \"a\", \"b\": true, \"t\": \"2026-01-01T00:00:00Z\"}\n";
    let mut rng = Rng(seed() ^ 0x15_0000);
    for i in 0..iterations(3000) {
        let mut bytes: Vec<u8> = match rng.below(4) {
            0 => (0..rng.below(400)).map(|_| rng.next() as u8).collect(),
            1 => {
                let d = rng.below(60_000);
                let opener = *rng.pick(&["[", "{\"a\":"]);
                let open = opener.repeat(d);
                let close = if open.starts_with('[') { "]" } else { "}" }.repeat(d);
                format!("{{\"x\": 1, \"s\": {open}1{close}}}\n").into_bytes()
            }
            _ => valid.repeat(1 + rng.below(4)).into_bytes(),
        };
        mutate(&mut rng, &mut bytes, JSON_FRAGMENTS);
        let on_error = if i % 2 == 0 {
            OnError::Skip
        } else {
            OnError::Fail
        };
        no_panic("JSON decoding", &bytes, || {
            let mut d = JsonDecoder::new(schema.clone(), "fuzz.jsonl", on_error).expect("decoder");
            let decoded = d.decode(&bytes, 1);
            if on_error == OnError::Skip {
                assert!(decoded.is_ok(), "skip never fails: {decoded:?}");
            }
        });
    }
}

#[test]
fn udf_registry_never_panics_on_module_bytes() {
    let stats =
        crate::udf::examples::examples_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
            .and_then(|root| crate::udf::examples::build_examples(&root).ok())
            .and_then(|dir| std::fs::read(dir.join("stats.wasm")).ok());
    let mut rng = Rng(seed() ^ 0x0da_0000);
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = crate::udf::UdfLimits::default();
    let mut registry = crate::udf::registry::Registry::open(dir.path(), limits).expect("registry");
    for i in 0..iterations(60) {
        let bytes: Vec<u8> = match (&stats, rng.below(3)) {
            (Some(valid), 0 | 1) => {
                // a valid module, changed a little: mostly still WebAssembly
                let mut b = valid.clone();
                for _ in 0..1 + rng.below(6) {
                    let at = rng.below(b.len());
                    b[at] = rng.next() as u8;
                }
                b
            }
            _ => {
                let mut b = b"\0asm\x01\0\0\0".to_vec();
                b.extend((0..rng.below(300)).map(|_| rng.next() as u8));
                b
            }
        };
        no_panic("registration", &bytes, || {
            if let Ok(m) = registry.register_bytes(&bytes, &format!("m{i}"), "fuzz") {
                let _ = registry.remove(&m.name);
            }
        });
    }
}
