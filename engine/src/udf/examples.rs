//! The example modules of `examples-udf/`, built from source for wasm32:
//! the demo workspace of `eddy serve --demo` and the tests use the real
//! example code, never prebuilt bytes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `examples-udf/` directory of this source tree: under `cwd`, or
/// beside the crate this was built from.
pub fn examples_dir(cwd: &Path) -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    [cwd.join("examples-udf"), manifest.join("../examples-udf")]
        .into_iter()
        .find(|p| p.join("Cargo.toml").exists())
}

/// Builds every module of `root` (release, `wasm32-unknown-unknown`, adding
/// the target with rustup when it is missing) into a target directory of
/// its own (under `CARGO_TARGET_DIR` when set: an outer cargo build holds
/// the lock on the usual one); returns the directory holding the `.wasm`
/// files.
///
/// # Errors
/// cargo cannot run or the build fails (with what to check).
pub fn build_examples(root: &Path) -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| PathBuf::from(t).join("examples-udf"))
        .unwrap_or_else(|| root.join("target"));
    // quick and idempotent when the target is already there
    let _ = Command::new("rustup")
        .args(["target", "add", "wasm32-unknown-unknown"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run cargo to build {}: {e}", root.display()))?;
    if !status.success() {
        return Err(format!(
            "building {} failed ({status}); is the wasm32-unknown-unknown target installed? (rustup target add wasm32-unknown-unknown)",
            root.display()
        ));
    }
    Ok(target.join("wasm32-unknown-unknown/release"))
}
