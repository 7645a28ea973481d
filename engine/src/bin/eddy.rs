//! The `eddy` command line: run, explain or check a SQL script.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use eddy::types::format_timestamp_ms;
use eddy::{Progress, QueryStats, RunOptions, Script};

/// Eddy: streaming SQL over Kafka, files and the built-in Nexmark generator.
#[derive(Parser)]
#[command(name = "eddy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    },
    /// Print the physical plan of each query.
    Explain {
        /// The SQL script.
        file: PathBuf,
        /// Print the plan as a JSON graph instead of indented text.
        #[arg(long)]
        json: bool,
    },
    /// Parse and plan a script without running it.
    Check {
        /// The SQL script.
        file: PathBuf,
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

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            file,
            stats,
            progress,
            quiet,
            batch_size,
        } => {
            let script = load(&file)?;
            let show_progress = !quiet && (progress || std::io::stderr().is_terminal());
            run(
                &script,
                stats,
                show_progress,
                RunOptions {
                    batch_size: batch_size.max(1),
                    ..RunOptions::default()
                },
            )
        }
        Command::Explain { file, json } => {
            let script = load(&file)?;
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
            let script = load(&file)?;
            println!(
                "{}: ok ({} streams, {} queries, {} explained)",
                file.display(),
                script.catalog.streams().len(),
                script.queries.len(),
                script.explains.len()
            );
            Ok(())
        }
    }
}

fn load(file: &Path) -> Result<Script> {
    let sql = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    eddy::plan_script(&sql).map_err(|e| anyhow::anyhow!("in {}: {e}", file.display()))
}

fn run(script: &Script, stats: bool, show_progress: bool, options: RunOptions) -> Result<()> {
    for plan in &script.explains {
        print!("{}", plan.explain_text());
    }
    if script.queries.is_empty() {
        if script.explains.is_empty() {
            bail!("the script has no query to run; add a SELECT or INSERT INTO statement");
        }
        return Ok(());
    }
    let mut running = Vec::new();
    for plan in &script.queries {
        running.push(eddy::start_query(plan, &options)?);
    }
    let stoppers: Vec<_> = running.iter().map(|q| q.stop_handle()).collect();
    let interrupts = Arc::new(AtomicUsize::new(0));
    ctrlc::set_handler(move || {
        if interrupts.fetch_add(1, Ordering::SeqCst) > 0 {
            std::process::exit(130);
        }
        eprintln!("\nstopping (Ctrl-C again to quit at once)...");
        stoppers.iter().for_each(|s| s.stop());
    })
    .context("cannot install the Ctrl-C handler")?;
    while !running.iter().all(|q| q.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        if show_progress {
            let p = running
                .iter()
                .map(|q| q.progress())
                .fold(Progress::default(), |a, b| Progress {
                    records_in: a.records_in + b.records_in,
                    records_out: a.records_out + b.records_out,
                    watermark: a.watermark.max(b.watermark),
                    elapsed: a.elapsed.max(b.elapsed),
                });
            eprint!("\r{}", progress_line(&p));
        }
    }
    if show_progress {
        eprintln!();
    }
    let mut first_err = None;
    for (i, q) in running.into_iter().enumerate() {
        match q.wait() {
            Ok(s) if stats => eprintln!("{}", stats_text(i, &s)),
            Ok(_) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn progress_line(p: &Progress) -> String {
    let rate = p.records_in as f64 / p.elapsed.as_secs_f64().max(1e-9);
    let wm = p.watermark.map_or("-".to_string(), format_timestamp_ms);
    format!(
        "in {} | out {} | {:.0} rec/s | watermark {wm}   ",
        p.records_in, p.records_out, rate
    )
}

fn stats_text(i: usize, s: &QueryStats) -> String {
    format!(
        "query {}: {} records in, {} out, {} late (dropped), {} null event time (dropped), {} malformed (skipped); \
         {:.3} s, {:.0} rec/s; watermark {}",
        i + 1,
        s.records_in,
        s.records_out,
        s.late_dropped,
        s.null_time_dropped,
        s.malformed,
        s.elapsed.as_secs_f64(),
        s.rate(),
        s.watermark.map_or("-".to_string(), format_timestamp_ms)
    )
}
