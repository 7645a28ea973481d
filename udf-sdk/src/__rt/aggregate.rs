//! The guest side of aggregates: argument tuples, group tables kept in
//! guest memory behind handles, and the batch entry points the
//! `#[aggregate]` macro exports (update, merge, finish, state, slide).

use alloc::vec::Vec;

use super::*;

/// The arguments of an aggregate: one type or a tuple.
#[diagnostic::on_unimplemented(
    message = "eddy_udf: `{Self}` cannot be an aggregate's Input",
    note = "use i64, f64, bool, &str, Option<...>, or a tuple of two or three of them"
)]
pub trait ArgTuple<'a>: Sized {
    /// SQL types and whether each takes NULL.
    fn sql() -> Vec<(SqlType, bool)>;
    /// Row `i` of the columns.
    fn read(cols: &[Column<'a>], i: usize) -> Result<Self, Skip>;
}

impl<'a, T: ArgType<'a>> ArgTuple<'a> for T {
    fn sql() -> Vec<(SqlType, bool)> {
        alloc::vec![(T::SQL, T::NULLABLE)]
    }
    fn read(cols: &[Column<'a>], i: usize) -> Result<Self, Skip> {
        T::read(cols.first().ok_or(Skip)?, i)
    }
}

impl<'a, A: ArgType<'a>, B: ArgType<'a>> ArgTuple<'a> for (A, B) {
    fn sql() -> Vec<(SqlType, bool)> {
        alloc::vec![(A::SQL, A::NULLABLE), (B::SQL, B::NULLABLE)]
    }
    fn read(cols: &[Column<'a>], i: usize) -> Result<Self, Skip> {
        Ok((
            A::read(cols.first().ok_or(Skip)?, i)?,
            B::read(cols.get(1).ok_or(Skip)?, i)?,
        ))
    }
}

impl<'a, A: ArgType<'a>, B: ArgType<'a>, C: ArgType<'a>> ArgTuple<'a> for (A, B, C) {
    fn sql() -> Vec<(SqlType, bool)> {
        alloc::vec![
            (A::SQL, A::NULLABLE),
            (B::SQL, B::NULLABLE),
            (C::SQL, C::NULLABLE)
        ]
    }
    fn read(cols: &[Column<'a>], i: usize) -> Result<Self, Skip> {
        Ok((
            A::read(cols.first().ok_or(Skip)?, i)?,
            B::read(cols.get(1).ok_or(Skip)?, i)?,
            C::read(cols.get(2).ok_or(Skip)?, i)?,
        ))
    }
}

/// Open group tables, by handle: each is a `Vec<T>` of one aggregate type.
static TABLES: Global<Vec<Option<alloc::boxed::Box<dyn core::any::Any>>>> =
    Global(UnsafeCell::new(Vec::new()));

fn table<T: crate::Aggregate>(handle: u32) -> Option<&'static mut Vec<T>> {
    // SAFETY: one call at a time; the reference does not outlive the call.
    let tables = unsafe { &mut *TABLES.0.get() };
    tables
        .get_mut(handle as usize)?
        .as_mut()?
        .downcast_mut::<Vec<T>>()
}

/// The group indexes of a call (`u32` each).
///
/// # Safety
/// `ptr` must hold `rows` u32 the host wrote.
unsafe fn groups<'a>(ptr: u32, rows: usize) -> &'a [u8] {
    if rows == 0 || ptr == 0 {
        return &[];
    }
    // SAFETY: the host wrote `rows` group indexes at `ptr`.
    unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, rows * 4) }
}

fn group_at(bytes: &[u8], i: usize) -> Option<usize> {
    let b: [u8; 4] = bytes.get(i * 4..i * 4 + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b) as usize)
}

/// `__eddy_agg_new_<name>`: a new, empty group table; returns its handle.
pub fn agg_new<T: crate::Aggregate>() -> u32 {
    // SAFETY: one call at a time.
    let tables = unsafe { &mut *TABLES.0.get() };
    let slot: alloc::boxed::Box<dyn core::any::Any> = alloc::boxed::Box::new(Vec::<T>::new());
    match tables.iter().position(Option::is_none) {
        Some(i) => {
            tables[i] = Some(slot);
            i as u32
        }
        None => {
            tables.push(Some(slot));
            (tables.len() - 1) as u32
        }
    }
}

/// `__eddy_agg_drop_<name>`: frees a table.
pub fn agg_drop<T: crate::Aggregate>(handle: u32) {
    if table::<T>(handle).is_some() {
        // SAFETY: one call at a time.
        let tables = unsafe { &mut *TABLES.0.get() };
        tables[handle as usize] = None;
    }
}

/// `__eddy_agg_update_<name>(handle, args, rows, groups, num_groups)`: adds
/// row `i` to group `groups[i]`.
pub fn agg_update<T>(handle: u32, args: u32, rows: u32, groups_ptr: u32, num_groups: u32) -> i32
where
    T: crate::Aggregate,
    for<'a> T::Input<'a>: ArgTuple<'a>,
{
    let Some(t) = table::<T>(handle) else {
        return ERR_BAD_HANDLE;
    };
    let rows = rows as usize;
    let types = <T::Input<'_> as ArgTuple<'_>>::sql();
    // SAFETY: the host wrote one descriptor per argument at `args`.
    let cols = unsafe { columns(args, types.len(), rows) };
    for (c, (ty, _)) in cols.iter().zip(&types) {
        if !c.check(*ty) {
            return ERR_BAD_INPUT;
        }
    }
    if t.len() < num_groups as usize {
        t.resize_with(num_groups as usize, T::default);
    }
    // SAFETY: the host wrote `rows` group indexes.
    let g = unsafe { groups(groups_ptr, rows) };
    for i in 0..rows {
        let Some(group) = group_at(g, i).and_then(|k| t.get_mut(k)) else {
            return ERR_BAD_INPUT;
        };
        if let Ok(input) = <T::Input<'_> as ArgTuple<'_>>::read(&cols, i) {
            group.update(input);
        }
    }
    0
}

/// `__eddy_agg_merge_<name>(handle, states, rows, groups, num_groups)`:
/// merges serialized state `i` (a VARCHAR-layout binary column) into group
/// `groups[i]`; NULL states are skipped.
pub fn agg_merge<T: crate::Aggregate>(
    handle: u32,
    states: u32,
    rows: u32,
    groups_ptr: u32,
    num_groups: u32,
) -> i32 {
    let Some(t) = table::<T>(handle) else {
        return ERR_BAD_HANDLE;
    };
    let rows = rows as usize;
    // SAFETY: the host wrote one descriptor at `states`.
    let cols = unsafe { columns(states, 1, rows) };
    let Some(col) = cols.first().filter(|c| c.check(SqlType::Varchar)) else {
        return ERR_BAD_INPUT;
    };
    if t.len() < num_groups as usize {
        t.resize_with(num_groups as usize, T::default);
    }
    // SAFETY: the host wrote `rows` group indexes.
    let g = unsafe { groups(groups_ptr, rows) };
    for i in 0..rows {
        if !col.valid(i) {
            continue;
        }
        let (Some(start), Some(end)) = (col.offset(i), col.offset(i + 1)) else {
            return ERR_BAD_INPUT;
        };
        let Some(other) = col.values.get(start..end).and_then(T::from_bytes) else {
            return ERR_BAD_STATE;
        };
        let Some(group) = group_at(g, i).and_then(|k| t.get_mut(k)) else {
            return ERR_BAD_INPUT;
        };
        group.merge(other);
    }
    0
}

/// `__eddy_agg_slide_<name>(handle, args, rows, ops, n_ops)`: runs a row
/// window's operations in order. `ops` holds `n_ops` triples of u32: (0,
/// group, row) adds argument row `row` to `group`, (1, group, row) retracts
/// it, (2, group, 0) appends `group`'s current result to the output column.
pub fn agg_slide<T>(handle: u32, args: u32, rows: u32, ops: u32, n_ops: u32) -> i32
where
    T: crate::Aggregate,
    T::Output: RetType,
    for<'a> T::Input<'a>: ArgTuple<'a>,
{
    let Some(t) = table::<T>(handle) else {
        return ERR_BAD_HANDLE;
    };
    let rows = rows as usize;
    let types = <T::Input<'_> as ArgTuple<'_>>::sql();
    // SAFETY: the host wrote one descriptor per argument at `args`.
    let cols = unsafe { columns(args, types.len(), rows) };
    for (c, (ty, _)) in cols.iter().zip(&types) {
        if !c.check(*ty) {
            return ERR_BAD_INPUT;
        }
    }
    // SAFETY: the host wrote `3 × n_ops` u32 at `ops`.
    let ops = unsafe { groups(ops, n_ops as usize * 3) };
    // SAFETY: one call at a time; no other reference to RESULT is alive.
    let (out, desc) = unsafe { &mut *RESULT.0.get() };
    out.reset();
    for k in 0..n_ops as usize {
        let (Some(op), Some(group), Some(row)) = (
            group_at(ops, 3 * k),
            group_at(ops, 3 * k + 1),
            group_at(ops, 3 * k + 2),
        ) else {
            return ERR_BAD_INPUT;
        };
        if t.len() <= group {
            t.resize_with(group + 1, T::default);
        }
        let state = &mut t[group];
        match op {
            0 | 1 => {
                let Ok(input) = <T::Input<'_> as ArgTuple<'_>>::read(&cols, row) else {
                    continue; // a row with NULL in a non-Option argument was never added
                };
                if op == 0 {
                    state.update(input);
                } else if !state.retract(input) {
                    return ERR_NO_RETRACT;
                }
            }
            _ => state.finish().write(out),
        }
    }
    publish(out, desc)
}

/// `__eddy_agg_finish_<name>(handle, groups, n)`: the results of the listed
/// groups (a group never updated is empty); changes nothing.
pub fn agg_finish<T>(handle: u32, groups_ptr: u32, n: u32) -> i32
where
    T: crate::Aggregate,
    T::Output: RetType,
{
    let Some(t) = table::<T>(handle) else {
        return ERR_BAD_HANDLE;
    };
    // SAFETY: the host wrote `n` group indexes.
    let g = unsafe { groups(groups_ptr, n as usize) };
    let empty = T::default();
    finish_rows(n as usize, |i, out| {
        let group = group_at(g, i).and_then(|k| t.get(k)).unwrap_or(&empty);
        group.finish().write(out);
    })
}

/// `__eddy_agg_state_<name>(handle, n)`: the states of groups `0..n` as a
/// binary column, then empties the table.
pub fn agg_state<T: crate::Aggregate>(handle: u32, n: u32) -> i32 {
    let Some(t) = table::<T>(handle) else {
        return ERR_BAD_HANDLE;
    };
    t.resize_with((n as usize).max(t.len()), T::default);
    let code = finish_rows(n as usize, |i, out| {
        out.push_valid(true);
        out.values.extend_from_slice(&t[i].to_bytes());
        out.push_offset();
        out.rows += 1;
    });
    t.clear();
    code
}

/// `__eddy_agg_clear_<name>(handle)`: empties the table.
pub fn agg_clear<T: crate::Aggregate>(handle: u32) {
    if let Some(t) = table::<T>(handle) {
        t.clear();
    }
}

/// Builds a result column of `rows` rows with `row` and returns its descriptor.
fn finish_rows(rows: usize, mut row: impl FnMut(usize, &mut Output)) -> i32 {
    // SAFETY: one call at a time; no other reference to RESULT is alive.
    let (out, desc) = unsafe { &mut *RESULT.0.get() };
    out.reset();
    for i in 0..rows {
        row(i, out);
    }
    if out.offsets.is_empty() && rows == 0 {
        out.offsets.extend_from_slice(&0i32.to_le_bytes());
    }
    publish(out, desc)
}

/// The self-description of an aggregate.
pub fn describe_aggregate<T>(name: &str) -> u64
where
    T: crate::Aggregate,
    T::Output: RetType,
    for<'a> T::Input<'a>: ArgTuple<'a>,
{
    describe(
        name,
        "aggregate",
        &<T::Input<'_> as ArgTuple<'_>>::sql(),
        Some(<T::Output as RetType>::SQL),
    )
}
