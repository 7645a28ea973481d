//! `eddy serve` run as a child process, for the CLI and browser tests.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// A running `eddy serve`: its address, token and stderr lines.
pub struct Served {
    pub child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
    pub token: String,
    /// The login URL it printed.
    pub login: String,
    /// What it wrote to stderr until it printed the login URL.
    pub seen: Vec<String>,
    /// Its later stderr lines.
    pub lines: Receiver<String>,
}

impl Served {
    /// Starts `eddy --data-dir <data> serve --listen 127.0.0.1:0 <args>` and
    /// waits (up to 5 minutes: `--demo` builds the example UDFs) for its
    /// login URL.
    pub fn start(data: &std::path::Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("eddy serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let login = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(300))
                .unwrap_or_else(|_| panic!("no login URL; stderr so far: {seen:?}"));
            let url = line
                .strip_prefix("open ")
                .and_then(|l| l.strip_suffix(" to log in"))
                .map(str::to_string);
            seen.push(line);
            if let Some(url) = url {
                break url;
            }
        };
        let rest = login.strip_prefix("http://").expect("an http URL");
        let (addr, token) = rest.split_once("/login?token=").expect("a login URL");
        Self {
            addr: addr.to_string(),
            token: token.to_string(),
            login: login.clone(),
            child,
            seen,
            lines: rx,
        }
    }

    /// A GET of the API with the token; the body.
    pub fn get(&self, path: &str) -> String {
        self.call("GET", path, None, "application/json")
    }

    /// A call of the API with the token and an optional body; the body.
    pub fn call(&self, method: &str, path: &str, body: Option<&[u8]>, ty: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr).expect("connects");
        let body = body.unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: {ty}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            self.token,
            body.len()
        )
        .expect("writes");
        s.write_all(body).expect("writes the body");
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        self.child.wait().expect("eddy serve exits")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
