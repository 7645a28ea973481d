//! The `eddy` command line: run, explain or check a SQL script.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use eddy::udf::registry::Registry;
use eddy::udf::{AddressSpace, UdfLimits, UdfModule};
use eddy::{CheckpointConfig, RunOptions, Script};

mod run;
mod scale;
use run::{run, serve_metrics};

/// Eddy: streaming SQL over Kafka, files and the built-in Nexmark generator.
#[derive(Parser)]
#[command(name = "eddy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where registered UDF modules live [default: ~/.local/share/eddy].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Memory limit of each UDF instance, in MiB (1 to 4096).
    #[arg(long, global = true, default_value_t = 64, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    udf_memory_mib: u64,
    /// Time limit of one UDF call (one batch), in milliseconds (10 to
    /// 600000: the clock that enforces it ticks every 10 ms).
    #[arg(long, global = true, default_value_t = 1000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    udf_timeout_ms: u64,
    /// Largest UDF module accepted at registration, in MiB (1 to 1024).
    #[arg(long, global = true, default_value_t = 16, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    udf_max_module_mib: u64,
    /// Address space each UDF instance reserves: `guard-pages` (4 GiB, so
    /// memory accesses need no bounds checks: the fastest calls), `limit`
    /// (its --udf-memory-mib only: for a limited address space or very many
    /// instances; calls about a quarter slower), or `auto` (`limit` when
    /// `ulimit -v` is set, else `guard-pages`).
    #[arg(long, global = true, default_value = "auto", value_name = "LAYOUT",
          value_parser = ["auto", "guard-pages", "limit"])]
    udf_address_space: String,
}

#[derive(Subcommand)]
enum UdfCommand {
    /// Register a WebAssembly module built with the eddy-udf SDK.
    Register {
        /// The .wasm file.
        path: PathBuf,
        /// Module name [default: the file name without .wasm].
        #[arg(long)]
        name: Option<String>,
    },
    /// List registered modules and their functions.
    List,
    /// Remove a registered module.
    Remove {
        /// The module name.
        name: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the queries of a SQL script until their sources end or Ctrl-C.
    Run {
        /// The SQL script (CREATE STREAM ...; SELECT ... / INSERT INTO ...).
        file: PathBuf,
        /// Print a summary (records in/out, late and malformed rows, rate) at the end.
        #[arg(long)]
        stats: bool,
        /// Show the progress line on stderr even when it is not a terminal.
        #[arg(long, conflicts_with = "quiet")]
        progress: bool,
        /// Never show the progress line.
        #[arg(long)]
        quiet: bool,
        /// Rows per source batch.
        #[arg(long, default_value_t = 8192)]
        batch_size: usize,
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9898).
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<String>,
        /// The query's parallelism: threads that decode a file source in
        /// chunks and workers that share a keyed aggregate's state by key
        /// hash (default: the number of cores; at most 256).
        #[arg(long, value_name = "N", value_parser = partitions_arg)]
        partitions: Option<usize>,
        /// The most window state a query may hold, shared by its
        /// partitions; past it the query stops with an error instead of the
        /// process running out of memory (default: half the machine's memory).
        #[arg(long, value_name = "MIB",
              value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
        max_state_mib: Option<u64>,
        /// Take durable checkpoints in DIR (or a file:// URL): a restart
        /// resumes each query from its latest checkpoint, exactly once into
        /// file and transactional Kafka sinks (docs/checkpoints.md).
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<String>,
        /// How often to checkpoint, e.g. 10s, 500ms, 1m (default 10s; a
        /// script's SET 'checkpoint.interval' = '...' wins for the queries
        /// after it).
        #[arg(long, value_name = "DURATION", requires = "checkpoint_dir",
              value_parser = duration_arg)]
        checkpoint_interval: Option<Duration>,
        /// Delete the queries' checkpoints in --checkpoint-dir and read their
        /// input from the beginning.
        #[arg(long, requires = "checkpoint_dir")]
        from_scratch: bool,
        /// Run this process's share of the script's one query, shared with
        /// the other processes started with the same script and another id
        /// (Kafka consumer groups; docs/scale-out.md). Needs a
        /// --checkpoint-dir every process reaches.
        #[arg(long, value_name = "K", requires = "checkpoint_dir")]
        instance_id: Option<String>,
        /// The query's name among processes (its groups, topic and
        /// checkpoints): default the script's file name without extension.
        #[arg(long, value_name = "NAME", requires = "instance_id")]
        app_id: Option<String>,
    },
    /// Print the physical plan of each query.
    Explain {
        /// The SQL script.
        file: PathBuf,
        /// Print the plan as a JSON graph instead of indented text.
        #[arg(long)]
        json: bool,
        /// Show the query as `eddy run --instance-id` runs it: its stages,
        /// consumer groups, tasks and repartition topic (asks the broker
        /// for partition counts).
        #[arg(long)]
        scale_out: bool,
        /// The query's name in scale-out (default: the script's file name).
        #[arg(long, value_name = "NAME", requires = "scale_out")]
        app_id: Option<String>,
    },
    /// Parse and plan a script without running it.
    Check {
        /// The SQL script.
        file: PathBuf,
    },
    /// Run the job server: the HTTP API (docs/http-api.md) and the web UI.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7878", value_name = "HOST:PORT")]
        listen: std::net::SocketAddr,
        /// Listen on a non-loopback address (anyone who reaches it and has
        /// the token can run queries).
        #[arg(long)]
        allow_remote: bool,
        /// Read the API token from this file instead of generating one
        /// (or set EDDY_TOKEN).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Queries that may run at once.
        #[arg(long, default_value_t = 16, value_name = "N")]
        max_queries: usize,
        /// Largest SQL body accepted, in KiB.
        #[arg(long, default_value_t = 1024, value_name = "KIB")]
        max_sql_kib: u64,
        /// Each query's parallelism (default: the number of cores; at most 256).
        #[arg(long, value_name = "N", value_parser = partitions_arg)]
        partitions: Option<usize>,
        /// Take durable checkpoints of every query in DIR (each under its
        /// name): a restarted server resumes its queries (docs/checkpoints.md).
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<String>,
        /// How often to checkpoint (default 10s).
        #[arg(long, value_name = "DURATION", requires = "checkpoint_dir",
              value_parser = duration_arg)]
        checkpoint_interval: Option<Duration>,
        /// Run every query as this server's share of a fleet: instance K of
        /// the query's consumer groups, the same query created under the
        /// same name on every server (docs/scale-out.md). Needs
        /// --checkpoint-dir, a directory every server reaches.
        #[arg(
            long,
            value_name = "K",
            requires = "checkpoint_dir",
            conflicts_with = "demo"
        )]
        instance_id: Option<String>,
        /// Start with a demo workspace (in ./eddy-demo unless --data-dir is
        /// given): the example UDFs of examples-udf/ (built now) registered
        /// and a windowed query over the Nexmark generator that calls their
        /// median running.
        #[arg(long)]
        demo: bool,
    },
    /// Manage WebAssembly user-defined functions.
    Udf {
        #[command(subcommand)]
        action: UdfCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // our errors carry their causes in their own text: print it once
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The UDF limits the options set.
fn udf_limits(cli: &Cli) -> UdfLimits {
    UdfLimits {
        // the ranges are checked when the options are read
        memory_bytes: (cli.udf_memory_mib as usize) << 20,
        call_timeout: Duration::from_millis(cli.udf_timeout_ms),
        module_bytes: (cli.udf_max_module_mib as usize) << 20,
        address_space: match cli.udf_address_space.as_str() {
            "guard-pages" => AddressSpace::GuardPages,
            "limit" => AddressSpace::Limit,
            _ => AddressSpace::auto(),
        },
    }
}

/// The UDF registry of the chosen data directory.
fn registry(cli: &Cli) -> Result<Registry> {
    let dir = cli.data_dir.clone().unwrap_or_else(Registry::default_dir);
    let r = Registry::open(&dir, udf_limits(cli))?;
    for w in r.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(r)
}

fn udf(cli: &Cli, action: &UdfCommand) -> Result<()> {
    let mut r = registry(cli)?;
    match action {
        UdfCommand::Register { path, name } => {
            let m = r.register(path, name.as_deref())?;
            println!(
                "registered {} ({} bytes, sha256 {}):",
                m.name, m.size, m.sha256
            );
            for f in &m.functions {
                println!("  {} {f}", f.kind.name());
            }
        }
        UdfCommand::List => {
            if r.modules().is_empty() {
                println!("no UDF modules registered (eddy udf register path.wasm)");
            }
            for m in r.modules() {
                println!("{}  {} bytes  sha256 {}", m.name, m.size, m.sha256);
                for f in &m.functions {
                    println!("  {} {f}", f.kind.name());
                }
            }
        }
        UdfCommand::Remove { name } => match r.remove(name)? {
            Some(m) => println!("removed {} ({} functions)", m.name, m.functions.len()),
            None => println!("removed {name} (it was set aside: it could not be loaded)"),
        },
    }
    Ok(())
}

fn dispatch(cli: Cli) -> Result<()> {
    let udfs = match &cli.command {
        Command::Udf { action } => return udf(&cli, action),
        Command::Serve { .. } => Vec::new(),
        _ => registry(&cli)?.modules().to_vec(),
    };
    match cli.command {
        Command::Run {
            file,
            stats,
            progress,
            quiet,
            batch_size,
            metrics_addr,
            partitions,
            max_state_mib,
            checkpoint_dir,
            checkpoint_interval,
            from_scratch,
            instance_id,
            app_id,
        } => {
            let script = load(&file, &udfs)?;
            let show_progress = !quiet && (progress || std::io::stderr().is_terminal());
            let exporter = match metrics_addr {
                Some(addr) => Some(serve_metrics(&addr)?),
                None => None,
            };
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let options = RunOptions {
                batch_size: batch_size.max(1),
                partitions: partitions.unwrap_or(cores),
                max_state_bytes: max_state_mib
                    .map(|m| m << 20)
                    .or_else(eddy::default_state_limit),
                checkpoint: checkpoint(checkpoint_dir, checkpoint_interval, from_scratch),
                ..RunOptions::default()
            };
            if let Some(k) = instance_id {
                let app = app_id.unwrap_or_else(|| app_of(&file));
                return scale::run_instance(&script, &app, &k, options, (quiet, exporter));
            }
            run(&script, stats, show_progress, options, exporter)
        }
        Command::Explain {
            file,
            json,
            scale_out,
            app_id,
        } => {
            let script = load(&file, &udfs)?;
            if scale_out {
                let app = app_id.unwrap_or_else(|| app_of(&file));
                return scale::explain(&script, &app, json);
            }
            let plans: Vec<_> = script.explains.iter().chain(&script.queries).collect();
            if plans.is_empty() {
                bail!("{} has no query to explain", file.display());
            }
            for plan in plans {
                if json {
                    println!("{}", serde_json::to_string_pretty(&plan.explain_json())?);
                } else {
                    print!("{}", plan.explain_text());
                }
            }
            Ok(())
        }
        Command::Check { file } => {
            let script = load(&file, &udfs)?;
            println!(
                "{}: ok ({} streams, {} queries, {} explained)",
                file.display(),
                script.catalog.streams().len(),
                script.queries.len(),
                script.explains.len()
            );
            for (i, plan) in script.queries.iter().enumerate() {
                for w in plan.warnings() {
                    eprintln!("warning: query {}: {w}", i + 1);
                }
            }
            Ok(())
        }
        Command::Serve {
            listen,
            allow_remote,
            ref token_file,
            max_queries,
            max_sql_kib,
            partitions,
            ref checkpoint_dir,
            checkpoint_interval,
            ref instance_id,
            demo,
        } => {
            let token = match (token_file, std::env::var("EDDY_TOKEN")) {
                (Some(f), _) => Some(
                    std::fs::read_to_string(f)
                        .with_context(|| format!("cannot read the token file {}", f.display()))?
                        .trim()
                        .to_string(),
                ),
                (None, Ok(t)) if !t.trim().is_empty() => Some(t.trim().to_string()),
                _ => None,
            };
            // the demo keeps its workspace beside you, not in your registry
            let data_dir = match (&cli.data_dir, demo) {
                (Some(d), _) => d.clone(),
                (None, true) => PathBuf::from("eddy-demo"),
                (None, false) => Registry::default_dir(),
            };
            let mut options = eddy::server::ServeOptions::new(data_dir);
            options.listen = listen;
            options.allow_remote = allow_remote;
            options.token = token;
            options.max_queries = max_queries.max(1);
            options.max_sql_bytes = max_sql_kib.max(1) << 10;
            options.udf_limits = udf_limits(&cli);
            options.partitions = partitions
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
            options.checkpoint = checkpoint(checkpoint_dir.clone(), checkpoint_interval, false);
            options.instance.clone_from(instance_id);
            serve(options, demo)
        }
        Command::Udf { ref action } => udf(&cli, action),
    }
}

/// The demo's query: bids per auction in 10-second windows with the median
/// price from the `stats` example module, over the generator paced at
/// 10,000 events a second.
const DEMO_QUERY: &str =
    "CREATE STREAM bids (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR,
    date_time TIMESTAMP, WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND)
  WITH (connector = 'nexmark', events = '1000000000', rate = '10000', realtime = 'true');

SELECT auction, window_start, window_end, COUNT(*) AS bids,
       median(CAST(price AS DOUBLE)) AS median_price
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end;";

/// Builds the example UDFs from examples-udf/ (the real example code),
/// registers them and starts the demo query, unless the data directory
/// already has them.
fn demo_workspace(server: &eddy::server::Server) -> Result<()> {
    for (module, wasm) in build_examples()? {
        if server.has_module(module) {
            continue;
        }
        let bytes = std::fs::read(&wasm)
            .with_context(|| format!("cannot read the built module {}", wasm.display()))?;
        server.register_module(module, &bytes)?;
        eprintln!("demo: registered {module} ({} bytes)", bytes.len());
    }
    if !server.has_query("demo") {
        server.create_query("demo", DEMO_QUERY)?;
        eprintln!("demo: started query 'demo' (median bid price per auction, 10-second windows)");
    }
    Ok(())
}

/// Builds examples-udf/ for wasm32 (adding the target with rustup if it is
/// missing); returns the demo's modules as (name, .wasm path).
fn build_examples() -> Result<Vec<(&'static str, PathBuf)>> {
    let root = eddy::udf::examples::examples_dir(&std::env::current_dir()?).context(
        "the demo builds its UDFs from examples-udf/: run it from a clone of the repository",
    )?;
    eprintln!(
        "demo: building the example UDFs in {} (first time: a minute)",
        root.display()
    );
    let dir = eddy::udf::examples::build_examples(&root).map_err(anyhow::Error::msg)?;
    Ok(vec![
        ("stats", dir.join("stats.wasm")),
        ("geo", dir.join("geo.wasm")),
    ])
}

/// Runs the server until SIGINT or SIGTERM, then stops every query (sinks
/// flushed) and exits 130 or 143, as a shell expects of a signalled program.
fn serve(options: eddy::server::ServeOptions, demo: bool) -> Result<()> {
    if !options.listen.ip().is_loopback() && options.allow_remote {
        eprintln!(
            "warning: listening on {}: anyone who can reach it and has the token can run queries",
            options.listen
        );
    }
    let server = eddy::server::Server::start(options)?;
    if demo {
        demo_workspace(&server)?;
    }
    eprintln!("eddy serve: listening on http://{}", server.addr());
    eprintln!("open {} to log in", server.login_url());
    for name in server.restart_failures() {
        eprintln!(
            "warning: recorded query '{name}' could not be restarted (see GET /api/queries/{name})"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| 130),
            _ = term.recv() => Ok(143),
        }
    })?;
    eprintln!("eddy serve: stopping the queries");
    let clean = server.shutdown(Duration::from_secs(30));
    if !clean {
        eprintln!("warning: some queries did not stop within 30 s");
    }
    std::process::exit(code)
}

/// The checkpoint options of `run` and `serve`.
fn checkpoint(
    dir: Option<String>,
    interval: Option<Duration>,
    from_scratch: bool,
) -> Option<CheckpointConfig> {
    dir.map(|dir| CheckpointConfig {
        interval: interval.unwrap_or(eddy::DEFAULT_CHECKPOINT_INTERVAL),
        from_scratch,
        ..CheckpointConfig::new(dir)
    })
}

/// `--checkpoint-interval`: a duration such as `10s`, `500ms`, `2m`.
fn duration_arg(text: &str) -> Result<Duration, String> {
    let ms = eddy::catalog::parse_duration_ms(text).ok_or_else(|| {
        format!("'{text}' is not a duration: give a number with ms, s, m or h, e.g. 10s or 500ms")
    })?;
    if ms < 10 {
        return Err(format!(
            "{text}: a checkpoint interval must be at least 10ms"
        ));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// `--partitions`: 1 to [`eddy::job::MAX_PARTITIONS`].
fn partitions_arg(text: &str) -> Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of partitions"))?;
    if (1..=eddy::job::MAX_PARTITIONS).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{n} partitions: give 1 to {} (each is a thread; more than the cores rarely helps)",
            eddy::job::MAX_PARTITIONS
        ))
    }
}

fn load(file: &Path, udfs: &[Arc<UdfModule>]) -> Result<Script> {
    let sql = eddy::sql::read_script(file)?;
    eddy::plan_script_with_udfs(&sql, udfs.to_vec())
        .map_err(|e| anyhow::anyhow!("in {}: {e}", file.display()))
}

/// A scale-out query's default name: the script's file name.
fn app_of(file: &std::path::Path) -> String {
    file.file_stem()
        .map_or_else(|| "query".into(), |s| s.to_string_lossy().into_owned())
}
