//! Hostile and careless input through the `eddy` binary: every case once
//! crashed, hung or lost data (issue 12); each now gets a clear error or is
//! counted as malformed, and the process keeps its exit-code promises.
//! `input.rs`: what comes in (SQL, records, files followed); `output.rs`:
//! what goes out (sinks, signals, exit codes); `udf.rs`: the UDF registry.

use std::path::Path;
use std::process::{Command, Output};

pub(crate) fn eddy(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("eddy runs")
}

/// A child process killed if the test fails before it is waited for.
pub(crate) struct Reaped(pub(crate) Option<std::process::Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes `files` (name, content) into a fresh directory.
pub(crate) fn files(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("written");
    }
    dir
}

#[path = "../../../tests/support/lib.rs"]
#[allow(dead_code)]
mod support;

mod input;
mod output;
mod udf;
mod values;
