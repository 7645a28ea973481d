//! Moving operator state to another number of workers (a restart with
//! another `--partitions`): the states the old workers wrote are split by
//! key group, so each new worker gets the keys the router now sends it.
//! Each operator says how its parts split ([`Operator::split_state`]); the
//! default, [`split_keyed`], fits states whose keyed rows stand alone.
//!
//! [`Operator::split_state`]: crate::exec::operator::Operator::split_state

use arrow::array::{ArrayRef, BooleanArray};
use arrow::record_batch::RecordBatch;

use crate::error::{ExecError, ExecResult};
use crate::exec::operator::OperatorState;

/// Which rows of key columns (the values of the exchange's key expressions,
/// `key0`, ...) the new worker owns.
pub type Owns<'a> = dyn Fn(&[ArrayRef]) -> ExecResult<Vec<bool>> + 'a;

/// The key columns (`key0`, `key1`, ...) of a state part.
pub fn key_columns(batch: &RecordBatch) -> Vec<ArrayRef> {
    batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.name()
                .strip_prefix("key")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(i, _)| batch.column(i).clone())
        .collect()
}

/// The rows of `batch` where `keep` is true.
///
/// # Errors
/// An Arrow failure (a mask of another length: a bug).
pub fn keep_rows(batch: &RecordBatch, keep: &[bool]) -> ExecResult<RecordBatch> {
    let mask: BooleanArray = keep.iter().map(|&k| Some(k)).collect();
    arrow::compute::filter_record_batch(batch, &mask)
        .map_err(|e| ExecError::arrow("splitting a state by key group", e))
}

/// The default split: of every part with key columns, the rows whose key
/// the new worker owns (parts of the same name from several old workers
/// follow one another, worker by worker); every part without key columns
/// from every old worker, in worker order, for the operator's `restore` to
/// combine (a clock is the same on every worker: it takes the first).
///
/// # Errors
/// Key columns that cannot be hashed, or an Arrow failure.
pub fn split_keyed(parts: Vec<OperatorState>, owns: &Owns<'_>) -> ExecResult<OperatorState> {
    let mut out = OperatorState::default();
    for state in parts {
        for (name, batch) in state.parts {
            let keys = key_columns(&batch);
            if keys.is_empty() {
                out.push(&name, batch);
                continue;
            }
            let kept = keep_rows(&batch, &owns(&keys)?)?;
            if kept.num_rows() > 0 {
                out.push(&name, kept);
            }
        }
    }
    Ok(out)
}

/// Per old worker, the new id of each of its key ids (`None`: another
/// worker owns the key). New ids number the owned keys worker by worker.
pub type Remaps = [Vec<Option<u32>>];

/// The rows of a per-key part (row `i` is key id `i`) whose key the new
/// worker owns, in new-id order.
///
/// # Errors
/// A part with another number of rows than keys (a bug), or an Arrow failure.
pub fn keep_keyed_rows(batch: &RecordBatch, remap: &[Option<u32>]) -> ExecResult<RecordBatch> {
    if batch.num_rows() != remap.len() {
        return Err(ExecError::Internal(format!(
            "a per-key state part has {} rows for {} keys",
            batch.num_rows(),
            remap.len()
        )));
    }
    let keep: Vec<bool> = remap.iter().map(Option::is_some).collect();
    keep_rows(batch, &keep)
}

/// The rows of a part whose BIGINT column `column` names a key id that the
/// new worker owns, with the column rewritten to the new ids.
///
/// # Errors
/// No such column, an id of no key (a bug), or an Arrow failure.
pub fn remap_ids(
    batch: &RecordBatch,
    column: &str,
    remap: &[Option<u32>],
) -> ExecResult<RecordBatch> {
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::Int64Type;
    let (i, _) = batch
        .schema()
        .column_with_name(column)
        .ok_or_else(|| ExecError::Internal(format!("a state part lacks its '{column}' column")))?;
    let ids = batch
        .column(i)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| ExecError::Internal(format!("a state part's '{column}' is not BIGINT")))?;
    let new: Vec<Option<u32>> = ids
        .values()
        .iter()
        .map(|&g| {
            usize::try_from(g)
                .ok()
                .and_then(|g| remap.get(g).copied())
                .ok_or_else(|| ExecError::Internal(format!("a state row of no key ({column} {g})")))
        })
        .collect::<ExecResult<_>>()?;
    let keep: Vec<bool> = new.iter().map(Option::is_some).collect();
    let kept = keep_rows(batch, &keep)?;
    let mut columns = kept.columns().to_vec();
    columns[i] = std::sync::Arc::new(Int64Array::from_iter_values(
        new.into_iter().flatten().map(i64::from),
    ));
    RecordBatch::try_new(kept.schema(), columns)
        .map_err(|e| ExecError::arrow("splitting a state by key group", e))
}

/// The parts called `name` as one batch (`None` when there are none).
///
/// # Errors
/// Parts of different schemas (a bug).
pub fn concat(parts: Vec<RecordBatch>) -> ExecResult<Option<RecordBatch>> {
    let Some(first) = parts.first() else {
        return Ok(None);
    };
    arrow::compute::concat_batches(&first.schema(), &parts)
        .map(Some)
        .map_err(|e| ExecError::arrow("merging states of several workers", e))
}
