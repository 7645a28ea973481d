//! `eddy serve`: a long-running server over the job layer — the JSON API
//! under `/api` (queries, UDF modules, live events), Prometheus `/metrics`
//! and `/healthz`. It uses the library's public surface only: plans from
//! `plan_script_with_udfs`, jobs from `JobManager`, modules from the UDF
//! `Registry`. See docs/http-api.md.
//!
//! The HTTP side runs on a small tokio runtime of its own; queries run on
//! their own threads (the job layer), so a slow client never slows one.

mod auth;
mod error;
mod metrics;
mod queries;
mod routes;
mod shared;
mod udfs;
mod ui;
mod views;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use auth::random_token;
pub use error::ApiError;
pub use metrics::MetricsServer;
pub use queries::QueryRecord;

use crate::exec::export::Exporter;
use crate::udf::UdfLimits;
use crate::udf::registry::Registry;

/// How a server is run.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen (default `127.0.0.1:7878`; port 0 picks one).
    pub listen: SocketAddr,
    /// Accept a non-loopback `listen` address.
    pub allow_remote: bool,
    /// The UDF registry and the recorded queries live here.
    pub data_dir: PathBuf,
    /// The API token (default: a fresh random one).
    pub token: Option<String>,
    /// Queries that may run at once.
    pub max_queries: usize,
    /// Largest SQL body accepted, in bytes.
    pub max_sql_bytes: u64,
    /// Limits of UDF modules and instances (its `module_bytes` caps uploads).
    pub udf_limits: UdfLimits,
    /// Each query's parallelism (`--partitions`).
    pub partitions: usize,
    /// Durable checkpoints of every query, each under its name
    /// (`--checkpoint-dir`): a restarted server resumes its queries.
    pub checkpoint: Option<crate::CheckpointConfig>,
    /// Run every query as this instance of several servers
    /// (`--instance-id`; docs/scale-out.md).
    pub instance: Option<String>,
}

impl ServeOptions {
    /// Defaults for `data_dir`.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            allow_remote: false,
            data_dir,
            token: None,
            max_queries: 16,
            max_sql_bytes: 1 << 20,
            udf_limits: UdfLimits::default(),
            partitions: 1,
            checkpoint: None,
            instance: None,
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address is not a loopback one and `allow_remote` is off.
    #[error(
        "{0} is not a loopback address: anyone who can reach it could use the API; pass --allow-remote to listen there anyway"
    )]
    Remote(SocketAddr),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source} (pick another with --listen HOST:PORT)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The metrics address of `eddy run` cannot be bound.
    #[error(
        "cannot serve metrics on '{addr}': {source} (use --metrics-addr HOST:PORT, e.g. 127.0.0.1:9898)"
    )]
    Metrics {
        /// The address as given.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory cannot be used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The UDF registry cannot be opened.
    #[error("{0}")]
    Udf(#[from] crate::udf::UdfError),
}

/// What the request handlers share.
pub(crate) struct State {
    token: String,
    hosts: Vec<String>,
    queries: queries::Queries,
    registry: Mutex<Registry>,
    exporter: Arc<Exporter>,
    max_sql_bytes: u64,
    max_module_bytes: u64,
}

impl State {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn udfs(&self) -> Vec<Arc<crate::udf::UdfModule>> {
        self.registry().modules().to_vec()
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    restart_failures: Vec<String>,
}

impl Server {
    /// Binds, opens the data directory (restarting the queries recorded as
    /// running) and serves on a thread of its own.
    ///
    /// # Errors
    /// See [`ServerError`].
    pub fn start(options: ServeOptions) -> Result<Self, ServerError> {
        if !options.listen.ip().is_loopback() && !options.allow_remote {
            return Err(ServerError::Remote(options.listen));
        }
        let dir = &options.data_dir;
        std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let registry = Registry::open(dir, options.udf_limits)?;
        for w in registry.warnings() {
            eprintln!("warning: {w}");
        }
        let exporter = Arc::new(Exporter::default());
        let queries = queries::Queries::open(
            dir,
            exporter.clone(),
            options.max_queries,
            options.partitions,
            (options.checkpoint.clone(), options.instance.clone()),
        )
        .map_err(|source| ServerError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let listener = TcpListener::bind(options.listen).map_err(|source| ServerError::Bind {
            addr: options.listen,
            source,
        })?;
        let bind_err = |source| ServerError::Bind {
            addr: options.listen,
            source,
        };
        let addr = listener.local_addr().map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let token = match &options.token {
            Some(t) => t.clone(),
            None => random_token().map_err(|source| ServerError::DataDir {
                path: "/dev/urandom".into(),
                source,
            })?,
        };
        let state = Arc::new(State {
            token,
            hosts: auth::allowed_hosts(addr),
            registry: Mutex::new(registry),
            queries,
            exporter,
            max_sql_bytes: options.max_sql_bytes,
            max_module_bytes: options.udf_limits.module_bytes as u64,
        });
        let restart_failures = state.queries.restart(&state.udfs());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("eddy-http")
            // planning recurses per operator of an expression (spawn_blocking threads)
            .thread_stack_size(16 << 20)
            .enable_all()
            .build()
            .map_err(bind_err)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::Builder::new()
            .name("eddy-serve".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        eprintln!("eddy serve: the listening socket could not be used");
                        return;
                    };
                    warp::serve(routes::routes(served))
                        .incoming(listener)
                        .graceful(async {
                            let _ = rx.await;
                        })
                        .run()
                        .await;
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(bind_err)?;
        Ok(Self {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
            restart_failures,
        })
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API token.
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// The URL that logs a browser in (sets the cookie).
    pub fn login_url(&self) -> String {
        format!("http://{}/login?token={}", self.addr, self.state.token)
    }

    /// Registers a WebAssembly module, as `POST /api/udfs/{name}` does.
    ///
    /// # Errors
    /// As that call: 400 a module the registry refuses, 409 a name taken.
    pub fn register_module(&self, name: &str, bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
        udfs::register(&self.state, name, bytes)
    }

    /// Whether a module named `name` is registered.
    pub fn has_module(&self, name: &str) -> bool {
        self.state
            .registry()
            .modules()
            .iter()
            .any(|m| m.name == name)
    }

    /// Creates and starts a query, as `POST /api/queries` does.
    ///
    /// # Errors
    /// As that call.
    pub fn create_query(&self, name: &str, sql: &str) -> Result<serde_json::Value, ApiError> {
        let udfs = self.state.udfs();
        self.state.queries.create(name, sql, &udfs)
    }

    /// Whether a query named `name` is recorded.
    pub fn has_query(&self, name: &str) -> bool {
        self.state.queries.get(name).is_ok()
    }

    /// Recorded queries that could not be restarted.
    pub fn restart_failures(&self) -> &[String] {
        &self.restart_failures
    }

    /// Stops serving and stops every query (their sinks flushed), keeping
    /// the running ones marked so the next start restarts them. `false` if
    /// a query did not stop within `timeout`.
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        self.stop_http();
        self.state.queries.shutdown(timeout)
    }

    fn stop_http(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_http();
        self.state.queries.shutdown(Duration::from_secs(10));
    }
}
