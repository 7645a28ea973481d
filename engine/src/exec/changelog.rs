//! EMIT CHANGES: which groups of an aggregate state a batch changed, and the
//! changelog rows that report them.
//!
//! The changelog is a retract stream in the `_op` column: `+I` a row is new,
//! `-U` the row previously emitted for the same group is withdrawn, `+U` its
//! replacement follows. Applying `+I`/`+U` as inserts and `-U` as a delete
//! of an identical row rebuilds the table that EMIT FINAL would emit.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray, UInt32Array};
use arrow::compute::kernels::cmp::not_distinct;
use arrow::compute::{concat, interleave, take};

use crate::error::{ExecError, ExecResult};

/// A new row.
pub const INSERT: &str = "+I";
/// The previous version of a row, withdrawn.
pub const UPDATE_BEFORE: &str = "-U";
/// The new version of a row.
pub const UPDATE_AFTER: &str = "+U";

/// Change tracking for one grouped state.
#[derive(Debug, Default)]
pub(crate) struct ChangeTracker {
    /// Groups `0..emitted` have been emitted before (indexes are dense and
    /// handed out in order, so this is all the history needed).
    emitted: usize,
    /// Per group: changed since the last emit.
    dirty: Vec<bool>,
    /// The changed groups in first-change order.
    touched: Vec<u32>,
    /// Changed groups that had been emitted: their `-U` rows come from `before`.
    retracted: Vec<u32>,
    /// Per accumulator, the emitted values of `retracted`, in chunks.
    before: Vec<Vec<ArrayRef>>,
    scratch: Vec<u32>,
}

impl ChangeTracker {
    /// A tracker for `n` groups that have all been emitted (a restored state).
    pub fn emitted(n: usize) -> Self {
        Self {
            emitted: n,
            dirty: vec![false; n],
            ..Self::default()
        }
    }

    /// Marks the groups of a batch as changed; returns the ones that were
    /// emitted before and are changing for the first time since, whose
    /// current (emitted) values must be saved with [`ChangeTracker::save`]
    /// before the batch is applied.
    pub fn mark(&mut self, group_ids: &[u32], num_groups: usize) -> &[u32] {
        self.dirty.resize(num_groups, false);
        self.scratch.clear();
        for &g in group_ids {
            let d = &mut self.dirty[g as usize];
            if !*d {
                *d = true;
                self.touched.push(g);
                if (g as usize) < self.emitted {
                    self.scratch.push(g);
                }
            }
        }
        self.retracted.extend_from_slice(&self.scratch);
        &self.scratch
    }

    /// Saves the values (one array per accumulator) of the groups the last
    /// [`ChangeTracker::mark`] returned.
    pub fn save(&mut self, values: Vec<ArrayRef>) {
        self.before.resize_with(values.len(), Vec::new);
        for (chunks, v) in self.before.iter_mut().zip(values) {
            chunks.push(v);
        }
    }

    /// Whether anything changed since the last emit.
    pub fn has_changes(&self) -> bool {
        !self.touched.is_empty()
    }

    /// Per group emitted before and changed since (in `touched` order),
    /// whether its values are what they were: `before` holds those groups'
    /// emitted values, `after` every touched group's current ones.
    fn unchanged(
        &self,
        touched: &[u32],
        before: &[ArrayRef],
        after: &[ArrayRef],
    ) -> ExecResult<Vec<bool>> {
        let err = |e| ExecError::arrow("changelog", e);
        let emitted: Vec<u32> = touched
            .iter()
            .enumerate()
            .filter(|(_, g)| (**g as usize) < self.emitted)
            .map(|(j, _)| j as u32)
            .collect();
        let mut same = vec![true; emitted.len()];
        if emitted.is_empty() {
            return Ok(same);
        }
        let emitted = UInt32Array::from(emitted);
        for (b, a) in before.iter().zip(after) {
            let now = take(a.as_ref(), &emitted, None).map_err(err)?;
            let eq = not_distinct(b, &now).map_err(err)?;
            for (k, s) in same.iter_mut().enumerate() {
                *s &= eq.value(k);
            }
        }
        Ok(same)
    }

    /// Builds the changelog of everything changed since the last emit and
    /// starts over. `keys_of` and `values_of` read the current keys and
    /// values of the given groups; `prefix` builds leading columns (window
    /// bounds) for a number of rows. Columns: prefix, keys, values, `_op`.
    ///
    /// # Errors
    /// An Arrow failure while assembling the columns.
    pub fn take(
        &mut self,
        num_groups: usize,
        keys_of: impl FnOnce(&[u32]) -> ExecResult<Vec<ArrayRef>>,
        values_of: impl FnOnce(&[u32]) -> ExecResult<Vec<ArrayRef>>,
        prefix: impl FnOnce(usize) -> Vec<ArrayRef>,
    ) -> ExecResult<Vec<ArrayRef>> {
        let touched = std::mem::take(&mut self.touched);
        let keys = keys_of(&touched)?;
        let after = values_of(&touched)?;
        let err = |e| ExecError::arrow("changelog", e);
        let before: Vec<ArrayRef> = std::mem::take(&mut self.before)
            .into_iter()
            .map(|chunks| {
                let refs: Vec<&dyn arrow::array::Array> =
                    chunks.iter().map(|c| c.as_ref()).collect();
                concat(&refs).map_err(err)
            })
            .collect::<ExecResult<_>>()?;
        let unchanged = self.unchanged(&touched, &before, &after)?;
        let mut key_rows: Vec<u32> = Vec::with_capacity(touched.len());
        let mut value_rows: Vec<(usize, usize)> = Vec::with_capacity(touched.len());
        let mut ops: Vec<&str> = Vec::with_capacity(touched.len());
        let mut r = 0;
        for (j, &g) in touched.iter().enumerate() {
            self.dirty[g as usize] = false;
            if (g as usize) < self.emitted && unchanged[r] {
                // its rows came and went: nothing to say
                r += 1;
                continue;
            }
            if (g as usize) < self.emitted {
                key_rows.push(j as u32);
                value_rows.push((0, r));
                ops.push(UPDATE_BEFORE);
                r += 1;
            }
            key_rows.push(j as u32);
            value_rows.push((1, j));
            ops.push(if (g as usize) < self.emitted {
                UPDATE_AFTER
            } else {
                INSERT
            });
        }
        self.retracted.clear();
        self.emitted = num_groups;
        let mut columns = prefix(ops.len());
        let key_rows = UInt32Array::from(key_rows);
        for k in &keys {
            columns.push(take(k.as_ref(), &key_rows, None).map_err(err)?);
        }
        for (i, a) in after.iter().enumerate() {
            let column = match before.get(i) {
                Some(b) => interleave(&[b.as_ref(), a.as_ref()], &value_rows).map_err(err)?,
                // nothing to withdraw: every row is an insert
                None => a.clone(),
            };
            columns.push(column);
        }
        columns.push(Arc::new(StringArray::from(ops)));
        Ok(columns)
    }
}
