//! Files a script's queries read and write, checked against each other
//! before anything runs: an output over an input would destroy it (it is
//! truncated before it is read), two queries writing one file would tear its
//! lines, and dead letters appended to an input or an output would corrupt it.

use std::path::{Path, PathBuf};

use crate::catalog::StreamDef;
use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::logical::SinkTarget;
use crate::plan::physical::PhysicalPlan;

/// How a query uses a file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Read,
    Write,
    DeadLetters,
}

/// One file used by one query through one stream.
struct FileUse {
    file: PathBuf,
    shown: String,
    how: Use,
    query: usize,
    stream: String,
    pos: SqlPos,
}

/// The file's path with its directory resolved (the file itself may not
/// exist yet): two spellings of one file compare equal.
fn canonical(path: &str) -> PathBuf {
    let p = Path::new(path);
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    let absolute = std::env::current_dir().map_or_else(|_| p.to_path_buf(), |d| d.join(p));
    match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => {
            std::fs::canonicalize(dir).map_or(absolute.clone(), |d| d.join(name))
        }
        _ => absolute,
    }
}

fn file_of(def: &StreamDef) -> Option<&str> {
    (def.connector() == "file")
        .then(|| def.options.get("path"))
        .flatten()
}

fn uses(queries: &[PhysicalPlan]) -> Vec<FileUse> {
    let mut out = Vec::new();
    for (query, plan) in queries.iter().enumerate() {
        let mut add = |path: &str, how: Use, def: &StreamDef| {
            out.push(FileUse {
                file: canonical(path),
                shown: path.to_string(),
                how,
                query,
                stream: def.name.clone(),
                pos: def.pos,
            });
        };
        for source in plan.sources() {
            if let Some(p) = file_of(source) {
                add(p, Use::Read, source);
            }
            if let Some(p) = &source.event_time.dead_letter_path {
                add(p, Use::DeadLetters, source);
            }
        }
        if let SinkTarget::Stream(def) = &plan.sink
            && let Some(p) = file_of(def)
        {
            add(p, Use::Write, def);
        }
    }
    out
}

/// Refuses a script whose queries would destroy their own input or each
/// other's output; the error points at the stream that writes.
pub(crate) fn check(queries: &[PhysicalPlan]) -> PlanResult<()> {
    let all = uses(queries);
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            // inputs are shared freely, dead-letter files too (whole lines appended)
            let same_use = a.how == b.how && (a.how != Use::Write || a.query == b.query);
            if a.file != b.file || same_use {
                continue;
            }
            // report at the writer (or the dead-letter stream), the later one first
            let (w, other) = if b.how != Use::Read { (b, a) } else { (a, b) };
            let what = match (w.how, other.how) {
                (Use::Write, Use::Read) => format!(
                    "stream '{}' would write to '{}', which stream '{}' reads: the input would be destroyed before it is read",
                    w.stream, w.shown, other.stream
                ),
                (Use::Write, Use::Write) => format!(
                    "two queries write to '{}' (through stream{} '{}'{}): their lines would interleave",
                    w.shown,
                    if w.stream == other.stream { "" } else { "s" },
                    other.stream,
                    if w.stream == other.stream {
                        String::new()
                    } else {
                        format!(" and '{}'", w.stream)
                    }
                ),
                _ => {
                    let (dead, other) = if w.how == Use::DeadLetters {
                        (w, other)
                    } else {
                        (other, w)
                    };
                    let how = match other.how {
                        Use::Read => "read as the input of",
                        _ => "written by",
                    };
                    format!(
                        "'{}' receives dead letters of stream '{}' and is also {how} stream '{}'",
                        dead.shown, dead.stream, other.stream
                    )
                }
            };
            return Err(PlanError::new(what, w.pos)
                .with_hint("give each output (and 'dead_letter.path') a file of its own"));
        }
    }
    Ok(())
}
