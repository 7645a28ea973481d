//! The groups of one aggregate state (one window, one session, the whole
//! stream) and their accumulators; how a state freezes into arrays and
//! merges them, and how it is snapshotted and restored at a checkpoint.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use std::sync::Arc;

use crate::agg::Accumulator;
use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::Evaluated;
use crate::exec::changelog::ChangeTracker;
use crate::exec::group_table::GroupTable;

/// A finished partial aggregate: group keys and each accumulator's state,
/// as arrays that can be merged into other states any number of times.
pub(crate) struct Frozen {
    keys: Vec<ArrayRef>,
    states: Vec<Vec<ArrayRef>>,
    rows: usize,
}

impl Frozen {
    /// As one batch: `prefix` columns, `key0`.., `acc0.0`.. (the layout of
    /// [`GroupedState::snapshot`]).
    ///
    /// # Errors
    /// An Arrow failure (a bug).
    pub fn to_batch(&self, prefix: Vec<(String, ArrayRef)>) -> ExecResult<RecordBatch> {
        let mut columns = prefix;
        for (i, k) in self.keys.iter().enumerate() {
            columns.push((format!("key{i}"), k.clone()));
        }
        for (a, fields) in self.states.iter().enumerate() {
            for (f, arr) in fields.iter().enumerate() {
                columns.push((format!("acc{a}.{f}"), arr.clone()));
            }
        }
        state_batch(columns, self.rows)
    }

    /// Reads [`Frozen::to_batch`] back (after `skip` prefix columns).
    pub fn from_batch(batch: &RecordBatch, skip: usize) -> Self {
        let columns = named_columns(batch, skip);
        let keys = columns("key");
        let mut states = Vec::new();
        loop {
            let fields = columns(&format!("acc{}.", states.len()));
            if fields.is_empty() {
                break;
            }
            states.push(fields);
        }
        Self {
            keys,
            states,
            rows: batch.num_rows(),
        }
    }

    /// Groups held.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Approximate bytes held.
    pub fn size(&self) -> usize {
        let arrays = self.keys.iter().chain(self.states.iter().flatten());
        arrays.map(|a| a.get_array_memory_size()).sum()
    }
}

/// Groups and their accumulators for one window.
pub(crate) struct GroupedState {
    pub(crate) groups: GroupTable,
    pub(crate) accumulators: Vec<Box<dyn Accumulator>>,
    pub(crate) group_ids: Vec<u32>,
    /// Set under EMIT CHANGES.
    pub(crate) changes: Option<ChangeTracker>,
}

impl GroupedState {
    /// Adds evaluated rows.
    ///
    /// # Errors
    /// An accumulator failure.
    pub fn update(&mut self, rows: &Evaluated) -> ExecResult<()> {
        self.groups
            .intern(&rows.keys, rows.rows, &mut self.group_ids)?;
        let n = self.groups.len();
        self.track(n)?;
        for (acc, args) in self.accumulators.iter_mut().zip(&rows.args) {
            acc.update_batch(args, &self.group_ids, n)?;
        }
        Ok(())
    }

    /// Under EMIT CHANGES, marks the groups of `group_ids` as changed and
    /// saves the emitted values of those about to change for the first time.
    pub(crate) fn track(&mut self, num_groups: usize) -> ExecResult<()> {
        let Some(t) = &mut self.changes else {
            return Ok(());
        };
        let first = t.mark(&self.group_ids, num_groups);
        if !first.is_empty() {
            let before = self
                .accumulators
                .iter()
                .map(|a| a.evaluate_groups(first))
                .collect::<ExecResult<_>>()?;
            t.save(before);
        }
        Ok(())
    }

    /// The changelog rows since the last call (EMIT CHANGES): `prefix`
    /// builds the leading columns for a number of rows. `None` when nothing
    /// changed or changes are not tracked.
    ///
    /// # Errors
    /// An Arrow failure building the batch.
    pub fn take_changes(
        &mut self,
        prefix: impl FnOnce(usize) -> Vec<ArrayRef>,
        schema: &SchemaRef,
    ) -> ExecResult<Option<RecordBatch>> {
        let n = self.groups.len();
        let (groups, accumulators) = (&self.groups, &self.accumulators);
        let Some(t) = self.changes.as_mut().filter(|t| t.has_changes()) else {
            return Ok(None);
        };
        let columns = t.take(
            n,
            |g| groups.key_columns_of(g),
            |g| accumulators.iter().map(|a| a.evaluate_groups(g)).collect(),
            prefix,
        )?;
        let rows = columns.last().map_or(0, |c| c.len());
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(schema.clone(), columns, &options)
            .map(Some)
            .map_err(|e| ExecError::arrow("changelog output", e))
    }

    /// The current aggregate values of the given groups, without changing them.
    ///
    /// # Errors
    /// An accumulator failure.
    pub fn values_of(&self, groups: &[u32]) -> ExecResult<Vec<ArrayRef>> {
        self.accumulators
            .iter()
            .map(|a| a.evaluate_groups(groups))
            .collect()
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Takes the keys and partial states out, as arrays.
    ///
    /// # Errors
    /// An Arrow failure while building them.
    pub fn freeze(mut self) -> ExecResult<Frozen> {
        let rows = self.groups.len();
        let keys = self.groups.key_columns()?;
        let states = self
            .accumulators
            .iter_mut()
            .map(|a| a.state(rows))
            .collect::<ExecResult<_>>()?;
        Ok(Frozen { keys, states, rows })
    }

    /// Merges a frozen partial aggregate under other keys (one row per group
    /// of `part`): e.g. many one-group sessions into one output state.
    ///
    /// # Errors
    /// An accumulator failure.
    pub fn merge_as(&mut self, keys: &[ArrayRef], part: &Frozen) -> ExecResult<()> {
        self.groups.intern(keys, part.rows, &mut self.group_ids)?;
        let n = self.groups.len();
        self.track(n)?;
        for (acc, state) in self.accumulators.iter_mut().zip(&part.states) {
            acc.merge_batch(state, &self.group_ids, n)?;
        }
        Ok(())
    }

    /// The final aggregate values of every group, without the keys.
    ///
    /// # Errors
    /// An accumulator failure.
    pub fn finish_values(mut self) -> ExecResult<Vec<ArrayRef>> {
        let n = self.groups.len();
        self.accumulators
            .iter_mut()
            .map(|a| a.evaluate(n))
            .collect()
    }

    /// Merges a frozen partial aggregate into this one, group by group.
    ///
    /// # Errors
    /// An accumulator failure.
    pub fn merge(&mut self, part: &Frozen) -> ExecResult<()> {
        self.merge_as(&part.keys, part)
    }

    /// The state as one batch, unchanged by taking it: `prefix` columns
    /// (e.g. the window start, one value per group), the key columns
    /// (`key0`, ...) and each accumulator's state fields (`acc0.0`, ...).
    /// Under EMIT CHANGES every change must have been emitted.
    ///
    /// # Errors
    /// Unemitted changes (a bug), or an accumulator or Arrow failure.
    pub fn snapshot(&mut self, prefix: Vec<(String, ArrayRef)>) -> ExecResult<RecordBatch> {
        if self
            .changes
            .as_ref()
            .is_some_and(ChangeTracker::has_changes)
        {
            return Err(ExecError::Internal(
                "a snapshot was asked for with changes not yet emitted".into(),
            ));
        }
        let n = self.groups.len();
        let mut columns = prefix;
        for (i, k) in self.groups.key_columns()?.into_iter().enumerate() {
            columns.push((format!("key{i}"), k));
        }
        // state() takes the state out; merging it straight back leaves the
        // accumulator as it was
        let all: Vec<u32> = (0..n as u32).collect();
        for (a, acc) in self.accumulators.iter_mut().enumerate() {
            let fields = acc.state(n)?;
            acc.merge_batch(&fields, &all, n)?;
            columns.extend(
                fields
                    .into_iter()
                    .enumerate()
                    .map(|(f, arr)| (format!("acc{a}.{f}"), arr)),
            );
        }
        state_batch(columns, n)
    }

    /// Loads a [`GroupedState::snapshot`] (after its first `skip` prefix
    /// columns) into this state, after the groups it has (none when fresh,
    /// or another worker's part of the same window when state is moved to
    /// another number of workers); the keys must be new to it.
    ///
    /// # Errors
    /// A batch that does not fit this state's keys and accumulators.
    pub fn restore(&mut self, batch: &RecordBatch, skip: usize) -> ExecResult<()> {
        let named = named_columns(batch, skip);
        let keys = named("key");
        let n = batch.num_rows();
        let before = self.groups.len();
        self.groups.intern(&keys, n, &mut self.group_ids)?;
        if self.groups.len() != before + n {
            return Err(ExecError::Internal(format!(
                "a restored state has {n} rows but {} new distinct keys",
                self.groups.len() - before
            )));
        }
        let ids = self.group_ids.clone();
        let total = self.groups.len();
        for (a, acc) in self.accumulators.iter_mut().enumerate() {
            let fields = named(&format!("acc{a}."));
            if fields.is_empty() {
                return Err(ExecError::Internal(format!(
                    "a restored state lacks accumulator {a}"
                )));
            }
            acc.merge_batch(&fields, &ids, total)?;
        }
        if let Some(t) = &mut self.changes {
            // every group had been emitted when the snapshot was taken
            *t = ChangeTracker::emitted(self.groups.len());
        }
        Ok(())
    }

    /// Approximate heap bytes held.
    pub fn size(&self) -> usize {
        self.groups.size() + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }

    /// One row per group: `prefix` columns (e.g. window bounds, already of
    /// the right length), keys, final aggregate values. Consumes the state.
    ///
    /// # Errors
    /// An Arrow failure building the batch.
    pub fn finish(mut self, prefix: Vec<ArrayRef>, schema: &SchemaRef) -> ExecResult<RecordBatch> {
        let n = self.groups.len();
        let mut columns = prefix;
        columns.extend(self.groups.key_columns()?);
        for acc in &mut self.accumulators {
            columns.push(acc.evaluate(n)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        RecordBatch::try_new_with_options(schema.clone(), columns, &options)
            .map_err(|e| ExecError::arrow("aggregate output", e))
    }
}

/// The columns of `batch` after the first `skip` whose names start with a
/// prefix, in order.
fn named_columns(batch: &RecordBatch, skip: usize) -> impl Fn(&str) -> Vec<ArrayRef> + '_ {
    move |prefix: &str| {
        batch
            .schema()
            .fields()
            .iter()
            .enumerate()
            .skip(skip)
            .filter(|(_, f)| f.name().starts_with(prefix))
            .map(|(i, _)| batch.column(i).clone())
            .collect()
    }
}

/// The one BIGINT value of column `name` in a one-row state part.
///
/// # Errors
/// No such BIGINT column, or no row.
pub(crate) fn state_value(part: &RecordBatch, name: &str) -> ExecResult<i64> {
    part.column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>())
        .filter(|c| !c.is_empty())
        .map(|c| c.value(0))
        .ok_or_else(|| ExecError::Internal(format!("a state part lacks its '{name}' value")))
}

/// A batch of named nullable columns with `rows` rows.
///
/// # Errors
/// Columns of different lengths (a bug).
pub(crate) fn state_batch(
    columns: Vec<(String, ArrayRef)>,
    rows: usize,
) -> ExecResult<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(n, a.data_type().clone(), true))
        .collect();
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(
        schema,
        columns.into_iter().map(|(_, a)| a).collect(),
        &options,
    )
    .map_err(|e| ExecError::arrow("state snapshot", e))
}
