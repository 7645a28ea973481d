//! `eddy run`: runs a script's queries as jobs, shows their progress and
//! stops them on Ctrl-C or SIGTERM.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use eddy::exec::export::Exporter;
use eddy::types::format_timestamp_ms;
use eddy::{JobHandle, JobManager, JobSpec, Progress, QueryStats, RunOptions, Script};

/// Serves `GET /metrics` at `addr` (the same HTTP stack as `eddy serve`).
pub(crate) fn serve_metrics(addr: &str) -> Result<Arc<Exporter>> {
    let exporter = Arc::new(Exporter::default());
    let server = eddy::server::MetricsServer::start(addr, exporter.clone())?;
    eprintln!("metrics: http://{}/metrics", server.addr());
    Ok(exporter)
}

/// Runs the script's queries as jobs until they end or Ctrl-C stops them.
pub(crate) fn run(
    script: &Script,
    stats: bool,
    show_progress: bool,
    options: RunOptions,
    exporter: Option<Arc<Exporter>>,
) -> Result<()> {
    for plan in &script.explains {
        print!("{}", plan.explain_text());
    }
    if script.queries.is_empty() && script.explains.is_empty() {
        bail!("the script has no query to run; add a SELECT or INSERT INTO statement");
    }
    let jobs = Arc::new(JobManager::new());
    for (i, plan) in script.queries.iter().enumerate() {
        let label = (i + 1).to_string();
        let mut options = options.clone();
        options.batch_latency = exporter.as_ref().map(|e| e.batch_latency(&label));
        // each query of the script keeps its checkpoints apart
        if let Some(c) = &mut options.checkpoint {
            c.name = Some(format!("query-{label}"));
            // a SET 'checkpoint.interval' before the query wins
            if let Some(d) = script.checkpoint_intervals.get(i).copied().flatten() {
                c.interval = d;
            }
        }
        let job = match jobs.submit(JobSpec::new(&label, plan.clone()).options(options)) {
            Ok(job) => job,
            Err(eddy::EngineError::Exec(eddy::ExecError::Checkpoint(
                e @ eddy::checkpoint::CheckpointError::Finished(_),
            ))) => {
                eprintln!("query {label} {e}");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(e) = &exporter {
            e.register(&label, job.metrics().clone(), job.source_counters().clone());
        }
    }
    let signalled = watch_signals({
        let jobs = jobs.clone();
        move || jobs.stop_all()
    })?;
    // with several queries, a failure is reported when it happens; the
    // others run on (docs/operations.md)
    let several = script.queries.len() > 1;
    let mut reported = vec![false; script.queries.len()];
    let report_failures = |reported: &mut Vec<bool>| {
        for (i, job) in jobs.jobs().iter().enumerate() {
            if let eddy::JobStatus::Failed(e) = job.status()
                && !std::mem::replace(&mut reported[i], true)
            {
                eprintln!("\nerror: query {} failed: {e}", job.name());
            }
        }
    };
    while !jobs.wait_all(Duration::from_millis(200)) {
        if several {
            report_failures(&mut reported);
        }
        if show_progress {
            eprint!("\r{}", progress_line(&jobs.jobs()));
        }
    }
    if several {
        report_failures(&mut reported);
    }
    if show_progress {
        eprintln!("\r{}", progress_line(&jobs.jobs()));
    }
    let mut first_err: Option<anyhow::Error> = None;
    let mut failed = 0;
    for job in jobs.jobs() {
        match job.wait() {
            Ok(s) if stats => {
                eprintln!("{}", stats_text(job.name(), &s));
                if let Some(c) = checkpoint_text(&s.checkpoints) {
                    eprintln!("query {}: {c}", job.name());
                }
            }
            Ok(_) => {}
            Err(e) => {
                failed += 1;
                first_err.get_or_insert(e.into());
            }
        }
    }
    if several && failed > 0 {
        // each failure was reported when it happened
        first_err = Some(anyhow::anyhow!(
            "{failed} of {} queries failed (each reported above)",
            script.queries.len()
        ));
    }
    match signalled.load(Ordering::SeqCst) {
        // stopped by a signal: the sinks are flushed, but the run did not
        // complete, and the exit code says so (130 Ctrl-C, 143 SIGTERM)
        0 => first_err.map_or(Ok(()), Err),
        code => {
            if let Some(e) = first_err {
                eprintln!("error: {e}");
            }
            std::process::exit(code)
        }
    }
}

/// Stops the jobs on the first SIGINT or SIGTERM (they flush their sinks);
/// a second one exits at once. The exit code to use (130 after SIGINT, 143
/// after SIGTERM; 0 until a signal came) is in the returned cell.
pub(crate) fn watch_signals(stop: impl Fn() + Send + 'static) -> Result<Arc<AtomicI32>> {
    use tokio::signal::unix::{SignalKind, signal};
    let code = Arc::new(AtomicI32::new(0));
    let seen = code.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot watch for signals")?;
    // installed here, before any query runs, so no signal is missed
    let (mut int, mut term) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .context("cannot install the SIGINT/SIGTERM handlers")?;
    std::thread::Builder::new()
        .name("eddy-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    let (code, name) = tokio::select! {
                        _ = int.recv() => (130, "Ctrl-C"),
                        _ = term.recv() => (143, "SIGTERM"),
                    };
                    if seen.swap(code, Ordering::SeqCst) != 0 {
                        std::process::exit(code);
                    }
                    eprintln!("\n{name}: stopping, sinks flushed (again to quit at once)...");
                    stop();
                }
            });
        })?;
    Ok(code)
}

/// One line over all jobs: rows in and out, input rate, the latest watermark.
fn progress_line(jobs: &[JobHandle]) -> String {
    let p = jobs
        .iter()
        .map(JobHandle::progress)
        .fold(Progress::default(), |a, b| Progress {
            records_in: a.records_in + b.records_in,
            records_out: a.records_out + b.records_out,
            watermark: a.watermark.max(b.watermark),
            elapsed: a.elapsed.max(b.elapsed),
            ..Progress::default()
        });
    let rate = p.rate();
    let wm = p.watermark.map_or("-".to_string(), format_timestamp_ms);
    // the newest checkpoint of any job
    let last = jobs
        .iter()
        .filter_map(|j| j.progress().checkpoints.last)
        .min_by_key(|l| l.at.elapsed());
    let checkpoint = last.map_or(String::new(), |l| {
        format!(
            " | checkpoint {} {:.0}s ago",
            l.id,
            l.at.elapsed().as_secs_f64()
        )
    });
    format!(
        "in {} | out {} | {:.0} rec/s | watermark {wm}{checkpoint}   ",
        p.records_in, p.records_out, rate
    )
}

/// The checkpoint part of `--stats`, if the query took or restored any.
fn checkpoint_text(s: &eddy::job::CheckpointStats) -> Option<String> {
    let mut parts = Vec::new();
    if let Some((id, took)) = s.restored {
        parts.push(format!(
            "resumed from checkpoint {id} (restored in {:.0} ms)",
            took.as_secs_f64() * 1e3
        ));
    }
    if let Some(l) = &s.last {
        // the checkpoint at the input's end holds no state (every window emitted)
        let held = if l.files == 0 {
            "no state".to_string()
        } else {
            format!("{:.2} MiB in {} files", l.bytes as f64 / 1048576.0, l.files)
        };
        parts.push(format!(
            "{} checkpoints taken, the last {}: {held}, took {:.0} ms, {:.1} s ago",
            s.completed,
            l.id,
            l.took.as_secs_f64() * 1e3,
            l.at.elapsed().as_secs_f64()
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn stats_text(query: &str, s: &QueryStats) -> String {
    format!(
        "query {query}: {} records in, {} out, {} too late ({} dead-lettered), {} late within the allowed lateness, \
         {} null event time (dropped), {} malformed; {:.3} s, {:.0} rec/s; watermark {}",
        s.records_in,
        s.records_out,
        s.late_dropped,
        s.dead_letters,
        s.late_accepted,
        s.null_time_dropped,
        s.malformed,
        s.elapsed.as_secs_f64(),
        s.rate(),
        s.watermark.map_or("-".to_string(), format_timestamp_ms)
    )
}
