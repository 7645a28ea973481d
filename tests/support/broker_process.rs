//! The broker a bench runs against: the one at `EDDY_TEST_KAFKA`, or one it
//! starts with `scripts/kafka-broker.sh` (and stops when done).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::kafka::BROKER_ENV;

/// The broker under test; stops it on drop when this bench started it.
pub struct BrokerProcess {
    pub addr: String,
    /// The workspace root, when we started the broker with its script.
    pub started_in: Option<PathBuf>,
}

impl BrokerProcess {
    /// `EDDY_TEST_KAFKA`, or a broker started by `scripts/kafka-broker.sh`.
    pub fn find_or_start() -> Self {
        if let Ok(addr) = std::env::var(BROKER_ENV)
            && !addr.trim().is_empty()
        {
            return Self {
                addr: addr.trim().to_string(),
                started_in: None,
            };
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
        eprintln!("{BROKER_ENV} is not set: starting a broker with scripts/kafka-broker.sh");
        let out = Command::new(root.join("scripts/kafka-broker.sh"))
            .current_dir(&root)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/kafka-broker.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "scripts/kafka-broker.sh failed ({}): {stdout}",
            out.status
        );
        let prefix = format!("export {BROKER_ENV}=");
        let addr = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(&prefix))
            .unwrap_or_else(|| {
                panic!("scripts/kafka-broker.sh printed no `{prefix}…` line: {stdout}")
            })
            .trim()
            .to_string();
        Self {
            addr,
            started_in: Some(root),
        }
    }

    pub fn describe(&self) -> String {
        match self.started_in {
            Some(_) => format!("{} (started by scripts/kafka-broker.sh)", self.addr),
            None => format!("{} (from {BROKER_ENV})", self.addr),
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let Some(root) = &self.started_in else {
            return;
        };
        let stopped = Command::new(root.join("scripts/kafka-broker.sh"))
            .arg("stop")
            .current_dir(root)
            .status();
        if !stopped.as_ref().is_ok_and(|s| s.success()) {
            eprintln!("could not stop the broker: {stopped:?}");
        }
    }
}
