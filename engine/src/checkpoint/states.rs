//! Operator states ([`OperatorState`], named Arrow batches) as the files of
//! a checkpoint: one file per part, named
//! `<owner>-op<operator>-<sequence>-<part>.arrow`, so that a pipeline's
//! states come back in the order they were written (an operator's parts may
//! depend on their order; see each operator's `snapshot`). `owner` names
//! the pipeline (a stage and its instance).

use crate::checkpoint::store::CheckpointStore;
use crate::checkpoint::{CheckpointError, FileEntry, Manifest};
use crate::exec::operator::OperatorState;

/// Writes `states` (a pipeline's, operator by operator) as files of
/// checkpoint `id`.
///
/// # Errors
/// The store refuses a file.
pub fn write_states(
    store: &CheckpointStore,
    id: u64,
    owner: &str,
    states: &[OperatorState],
) -> Result<Vec<FileEntry>, CheckpointError> {
    let mut files = Vec::new();
    for (op, state) in states.iter().enumerate() {
        for (seq, (part, batch)) in state.parts.iter().enumerate() {
            let name = format!("{owner}-op{op:02}-{seq:05}-{part}.arrow");
            files.push(store.write(id, &name, std::slice::from_ref(batch))?);
        }
    }
    Ok(files)
}

/// Reads back the states `owner` wrote into the checkpoint of `manifest`,
/// for a pipeline of `operators` operators.
///
/// # Errors
/// A file is missing or unreadable, or names an operator the pipeline has not.
pub fn read_states(
    store: &CheckpointStore,
    manifest: &Manifest,
    owner: &str,
    operators: usize,
) -> Result<Vec<OperatorState>, CheckpointError> {
    let mut states = vec![OperatorState::default(); operators];
    let prefix = format!("{owner}-op");
    let mut named: Vec<(usize, usize, &str, &str)> = Vec::new();
    for f in &manifest.files {
        let Some(rest) = f.name.strip_prefix(&prefix) else {
            continue;
        };
        let parsed = rest
            .strip_suffix(".arrow")
            .and_then(|r| {
                let mut it = r.splitn(3, '-');
                Some((
                    it.next()?.parse().ok()?,
                    it.next()?.parse().ok()?,
                    it.next()?,
                ))
            })
            .filter(|(op, _, _)| *op < operators);
        let Some((op, seq, part)) = parsed else {
            return Err(CheckpointError::Corrupt {
                location: format!("checkpoint {}", manifest.id),
                what: format!(
                    "'{}' is not a state file of a pipeline of {operators} operators",
                    f.name
                ),
            });
        };
        named.push((op, seq, part, &f.name));
    }
    named.sort_unstable();
    for (op, _, part, name) in named {
        for batch in store.read(manifest, name)? {
            states[op].push(part, batch);
        }
    }
    Ok(states)
}
