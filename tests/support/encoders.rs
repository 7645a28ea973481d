//! Payloads written by encoders independent of Eddy: Python's `fastavro`
//! (and, for Protobuf, the `protobuf` package), from PyPI, installed once
//! into the repository's `.venv/` (as `scripts/kafka-broker.sh` installs the
//! broker). The scripts are in `tests/support/encoders/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const PACKAGES: &[&str] = &[
    "fastavro==1.9.7",
    "protobuf==5.28.3",
    "grpcio-tools==1.66.2",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The Python of `.venv/` with the encoders installed.
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let venv = repo().join(".venv");
        let py = venv.join("bin/python");
        if !py.exists() {
            let ok = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "python3 -m venv .venv failed: the encoder tests need Python 3"
            );
        }
        let has = Command::new(&py)
            .args(["-c", "import fastavro, google.protobuf, grpc_tools"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has {
            let ok = Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(PACKAGES)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "pip install {PACKAGES:?} into .venv failed (needs PyPI)"
            );
        }
        py
    })
    .clone()
}

/// Runs `script` (in tests/support/encoders/) with `request` as JSON on
/// stdin; its stdout as JSON.
pub fn run(script: &str, request: &serde_json::Value) -> serde_json::Value {
    let path = repo().join("tests/support/encoders").join(script);
    let mut child = Command::new(python())
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the encoder");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request");
    let out = child.wait_with_output().expect("the encoder runs");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the encoder's JSON")
}

/// Standard base64 → bytes.
pub fn unbase64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * k);
        }
        for k in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * k)) as u8);
        }
    }
    out
}

/// Avro values of `records` written with `schema` by fastavro: bare bodies
/// (`schema_id` `None`) or in the Confluent wire format.
pub fn avro_values(
    schema: &serde_json::Value,
    records: &[serde_json::Value],
    schema_id: Option<u32>,
) -> Vec<Vec<u8>> {
    let req = serde_json::json!({
        "schema": schema,
        "records": records,
        "mode": if schema_id.is_some() { "confluent" } else { "datum" },
        "schema_id": schema_id.unwrap_or(0),
    });
    run("avro_encode.py", &req)
        .as_array()
        .expect("a list of values")
        .iter()
        .map(|v| unbase64(v.as_str().expect("base64 text")))
        .collect()
}

/// An Avro object container file of `records`, written by fastavro.
pub fn avro_file(
    schema: &serde_json::Value,
    records: &[serde_json::Value],
    codec: &str,
) -> Vec<u8> {
    let req = serde_json::json!({
        "schema": schema, "records": records, "mode": "ocf", "codec": codec,
    });
    unbase64(run("avro_encode.py", &req).as_str().expect("base64 text"))
}

/// The writer schema and records of an Avro container file, read by fastavro.
pub fn avro_file_records(file: &[u8]) -> serde_json::Value {
    let b64 = eddy::connectors::dead_letter::base64(file);
    run(
        "avro_encode.py",
        &serde_json::json!({"mode": "read_ocf", "file": b64}),
    )
}

/// Protobuf values of `records` (protobuf JSON) as message `message` of
/// `proto` (source text), written by Google's `protobuf` package after
/// `protoc` compiled it; and the compiled descriptor set. With
/// `confluent_id`, the values are in the Confluent wire format.
pub fn protobuf_values(
    proto: &str,
    message: &str,
    records: &[serde_json::Value],
    confluent_id: Option<u32>,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut req = serde_json::json!({"proto": proto, "message": message, "records": records});
    if let Some(id) = confluent_id {
        req["confluent_id"] = id.into();
    }
    let out = run("proto_encode.py", &req);
    let set = unbase64(out["descriptor_set"].as_str().expect("a descriptor set"));
    let values = out["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| unbase64(v.as_str().expect("base64 text")))
        .collect();
    (set, values)
}
