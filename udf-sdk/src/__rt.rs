//! The guest side of ABI v1, used by the code the macros generate. Not a
//! public API: its items may change with the ABI version.
//!
//! A column crosses the boundary as a [`ColumnDesc`]: four little-endian
//! `u32` — values pointer, values length in bytes, validity bitmap pointer
//! (0: no NULLs), offsets pointer (strings only, else 0) — in Arrow layout:
//! `BIGINT`/`DOUBLE` 8 bytes per row, `BOOLEAN` a bitmap, `VARCHAR` `i32`
//! offsets (rows + 1) into UTF-8 data. The host writes the argument
//! descriptors into memory it got from [`__eddy_alloc`] and calls
//! `__eddy_call_<name>(args, rows)`; the function returns a pointer to the
//! result's descriptor (valid until the next call), or a negative error code.

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

pub use eddy_udf_abi::{
    AbiType as SqlType, ERR_BAD_HANDLE, ERR_BAD_INPUT, ERR_BAD_STATE, ERR_BAD_UTF8, ERR_NO_RETRACT,
};

/// One column at the boundary.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ColumnDesc {
    /// Values (or string data).
    pub values: u32,
    /// Their length in bytes.
    pub values_len: u32,
    /// Validity bitmap, LSB first; 0 when every row is valid.
    pub validity: u32,
    /// `i32` offsets for VARCHAR (rows + 1 of them); 0 otherwise.
    pub offsets: u32,
}

/// A read-only view of an argument column.
pub struct Column<'a> {
    values: &'a [u8],
    /// The values as 8-byte words, when the buffer is 8-aligned (the host
    /// aligns it): BIGINT and DOUBLE rows read by index.
    words: &'a [u64],
    validity: Option<&'a [u8]>,
    offsets: Option<&'a [u8]>,
    rows: usize,
}

fn bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

impl<'a> Column<'a> {
    /// # Safety
    /// `d` must describe memory of this instance (the host wrote it).
    unsafe fn from_desc(d: &ColumnDesc, rows: usize) -> Self {
        let slice = |ptr: u32, len: usize| -> &'a [u8] {
            if ptr == 0 || len == 0 {
                &[]
            } else {
                // SAFETY: the host placed `len` bytes at `ptr` in this linear
                // memory; an address outside it traps rather than reads.
                unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, len) }
            }
        };
        let values = slice(d.values, d.values_len as usize);
        // SAFETY: u64 has no invalid bit patterns; align_to only yields the
        // aligned middle part, which is the whole slice when the host
        // aligned the buffer (it always does).
        let (head, words, _) = unsafe { values.align_to::<u64>() };
        let words = if head.is_empty() { words } else { &[] };
        Column {
            values,
            words,
            validity: (d.validity != 0).then(|| slice(d.validity, rows.div_ceil(8))),
            offsets: (d.offsets != 0).then(|| slice(d.offsets, (rows + 1) * 4)),
            rows,
        }
    }

    #[inline]
    fn valid(&self, i: usize) -> bool {
        self.validity.is_none_or(|v| bit(v, i))
    }

    #[inline]
    fn fixed8(&self, i: usize) -> Option<u64> {
        match self.words.get(i) {
            Some(&w) => Some(u64::from_le(w)),
            None => {
                let b: [u8; 8] = self.values.get(i * 8..i * 8 + 8)?.try_into().ok()?;
                Some(u64::from_le_bytes(b))
            }
        }
    }

    fn offset(&self, i: usize) -> Option<usize> {
        let o = self.offsets?.get(i * 4..i * 4 + 4)?;
        usize::try_from(i32::from_le_bytes(o.try_into().ok()?)).ok()
    }

    /// Whether the descriptor fits `rows` rows of type `ty`.
    fn check(&self, ty: SqlType) -> bool {
        match ty {
            SqlType::BigInt | SqlType::Double => self.values.len() >= self.rows * 8,
            SqlType::Boolean => self.values.len() >= self.rows.div_ceil(8),
            SqlType::Varchar => {
                self.offsets.is_some()
                    && (0..=self.rows)
                        .all(|i| self.offset(i).is_some_and(|o| o <= self.values.len()))
            }
        }
    }
}

/// A Rust type a UDF may take as an argument.
#[diagnostic::on_unimplemented(
    message = "eddy_udf: `{Self}` cannot be a UDF argument",
    label = "unsupported argument type",
    note = "use i64, f64, bool, &str, or Option<...> of one of them"
)]
pub trait ArgType<'a>: Sized {
    /// Its SQL type.
    const SQL: SqlType;
    /// Whether it takes NULL (`Option<T>`).
    const NULLABLE: bool = false;
    /// Row `i`; `Err` for NULL in a non-nullable argument (the row is skipped).
    fn read(col: &Column<'a>, i: usize) -> Result<Self, Skip>;
    /// The value of an 8-byte word, for the fast path over NULL-free
    /// BIGINT/DOUBLE columns; `None` for types that are not one word.
    #[inline]
    fn from_word(w: u64) -> Option<Self> {
        let _ = w;
        None
    }
}

/// A NULL reached a non-`Option` argument: the row's result is NULL.
pub struct Skip;

/// Bad bytes in a VARCHAR argument.
pub struct BadUtf8;

impl<'a> ArgType<'a> for i64 {
    const SQL: SqlType = SqlType::BigInt;
    #[inline]
    fn from_word(w: u64) -> Option<Self> {
        Some(w as i64)
    }
    fn read(col: &Column<'a>, i: usize) -> Result<Self, Skip> {
        if !col.valid(i) {
            return Err(Skip);
        }
        col.fixed8(i).map(|w| w as i64).ok_or(Skip)
    }
}

impl<'a> ArgType<'a> for f64 {
    const SQL: SqlType = SqlType::Double;
    #[inline]
    fn from_word(w: u64) -> Option<Self> {
        Some(f64::from_bits(w))
    }
    fn read(col: &Column<'a>, i: usize) -> Result<Self, Skip> {
        if !col.valid(i) {
            return Err(Skip);
        }
        col.fixed8(i).map(f64::from_bits).ok_or(Skip)
    }
}

impl<'a> ArgType<'a> for bool {
    const SQL: SqlType = SqlType::Boolean;
    fn read(col: &Column<'a>, i: usize) -> Result<Self, Skip> {
        if !col.valid(i) {
            return Err(Skip);
        }
        Ok(bit(col.values, i))
    }
}

impl<'a> ArgType<'a> for &'a str {
    const SQL: SqlType = SqlType::Varchar;
    fn read(col: &Column<'a>, i: usize) -> Result<Self, Skip> {
        if !col.valid(i) {
            return Err(Skip);
        }
        let (start, end) = (col.offset(i).ok_or(Skip)?, col.offset(i + 1).ok_or(Skip)?);
        let bytes = col.values.get(start..end).ok_or(Skip)?;
        // checked once per batch in `call`, so this cannot fail here
        core::str::from_utf8(bytes).map_err(|_| Skip)
    }
}

impl<'a, T: ArgType<'a>> ArgType<'a> for Option<T> {
    const SQL: SqlType = T::SQL;
    const NULLABLE: bool = true;
    fn read(col: &Column<'a>, i: usize) -> Result<Self, Skip> {
        if col.valid(i) {
            T::read(col, i).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// A Rust type a UDF may return.
#[diagnostic::on_unimplemented(
    message = "eddy_udf: `{Self}` cannot be a UDF result",
    label = "unsupported result type",
    note = "return i64, f64, bool, String, or Option<...> of one of them"
)]
pub trait RetType {
    /// Its SQL type.
    const SQL: SqlType;
    /// Appends the value to `out` (`None`: NULL).
    fn write(self, out: &mut Output);
}

/// A result value a filter may return.
#[diagnostic::on_unimplemented(
    message = "eddy_udf: a filter must return bool, not `{Self}`",
    label = "filters return bool",
    note = "use #[eddy_udf::scalar] for a function that computes a value"
)]
pub trait FilterRet {
    /// Whether the row passes.
    fn pass(self) -> bool;
}

impl FilterRet for bool {
    fn pass(self) -> bool {
        self
    }
}

impl FilterRet for Option<bool> {
    fn pass(self) -> bool {
        self == Some(true)
    }
}

/// A result column being built.
#[derive(Default)]
pub struct Output {
    values: Vec<u8>,
    validity: Vec<u8>,
    offsets: Vec<u8>,
    rows: usize,
    nulls: usize,
}

impl Output {
    fn reset(&mut self) {
        self.values.clear();
        self.validity.clear();
        self.offsets.clear();
        self.rows = 0;
        self.nulls = 0;
    }

    fn push_valid(&mut self, valid: bool) {
        if self.rows.is_multiple_of(8) {
            self.validity.push(0);
        }
        if valid {
            let last = self.validity.len() - 1;
            self.validity[last] |= 1 << (self.rows % 8);
        } else {
            self.nulls += 1;
        }
    }

    fn push_bit(&mut self, on: bool) {
        if self.rows.is_multiple_of(8) {
            self.values.push(0);
        }
        if on {
            let last = self.values.len() - 1;
            self.values[last] |= 1 << (self.rows % 8);
        }
    }

    /// Appends a NULL of type `ty`.
    pub fn null(&mut self, ty: SqlType) {
        self.push_valid(false);
        match ty {
            SqlType::BigInt | SqlType::Double => self.values.extend_from_slice(&[0; 8]),
            SqlType::Boolean => self.push_bit(false),
            SqlType::Varchar => self.push_offset(),
        }
        self.rows += 1;
    }

    fn push_offset(&mut self) {
        if self.offsets.is_empty() {
            self.offsets.extend_from_slice(&0i32.to_le_bytes());
        }
        let end = self.values.len() as i32;
        self.offsets.extend_from_slice(&end.to_le_bytes());
    }
}

impl RetType for i64 {
    const SQL: SqlType = SqlType::BigInt;
    fn write(self, out: &mut Output) {
        out.push_valid(true);
        out.values.extend_from_slice(&self.to_le_bytes());
        out.rows += 1;
    }
}

impl RetType for f64 {
    const SQL: SqlType = SqlType::Double;
    fn write(self, out: &mut Output) {
        out.push_valid(true);
        out.values.extend_from_slice(&self.to_le_bytes());
        out.rows += 1;
    }
}

impl RetType for bool {
    const SQL: SqlType = SqlType::Boolean;
    fn write(self, out: &mut Output) {
        out.push_valid(true);
        out.push_bit(self);
        out.rows += 1;
    }
}

impl RetType for String {
    const SQL: SqlType = SqlType::Varchar;
    fn write(self, out: &mut Output) {
        out.push_valid(true);
        out.values.extend_from_slice(self.as_bytes());
        out.push_offset();
        out.rows += 1;
    }
}

impl<T: RetType> RetType for Option<T> {
    const SQL: SqlType = T::SQL;
    fn write(self, out: &mut Output) {
        match self {
            Some(v) => v.write(out),
            None => out.null(T::SQL),
        }
    }
}

/// Module-global state; a WebAssembly instance runs one call at a time.
struct Global<T>(UnsafeCell<T>);

// SAFETY: wasm32-unknown-unknown instances are single-threaded, and each
// entry point takes the cell only for its own duration (no re-entrancy).
unsafe impl<T> Sync for Global<T> {}

static RESULT: Global<(Output, ColumnDesc)> = Global(UnsafeCell::new((
    Output {
        values: Vec::new(),
        validity: Vec::new(),
        offsets: Vec::new(),
        rows: 0,
        nulls: 0,
    },
    ColumnDesc {
        values: 0,
        values_len: 0,
        validity: 0,
        offsets: 0,
    },
)));

static DESCRIPTIONS: Global<Vec<String>> = Global(UnsafeCell::new(Vec::new()));

/// Reads the argument descriptors of a call.
///
/// # Safety
/// `args` must point at `n` descriptors the host wrote.
unsafe fn columns<'a>(args: u32, n: usize, rows: usize) -> Vec<Column<'a>> {
    (0..n)
        .map(|k| {
            // SAFETY: the host wrote `n` descriptors at `args` (16 bytes each);
            // read_unaligned because the host need not align them.
            let d =
                unsafe { core::ptr::read_unaligned((args as usize + k * 16) as *const ColumnDesc) };
            // SAFETY: the descriptor points into this instance's memory.
            unsafe { Column::from_desc(&d, rows) }
        })
        .collect()
}

/// Runs a scalar or filter body over a batch: checks the arguments against
/// their types, calls `row` for every row, and returns the result descriptor
/// pointer (or a negative error code).
pub fn call(
    args: u32,
    rows: u32,
    types: &[SqlType],
    row: impl FnMut(&[Column<'_>], usize, &mut Output),
) -> i32 {
    let mut row = row;
    let rows = rows as usize;
    // SAFETY: the host wrote `types.len()` descriptors at `args` for this call.
    let cols = unsafe { columns(args, types.len(), rows) };
    for (c, &t) in cols.iter().zip(types) {
        if !c.check(t) {
            return ERR_BAD_INPUT;
        }
        if t == SqlType::Varchar {
            let end = c.offset(rows).unwrap_or(0);
            let start = c.offset(0).unwrap_or(0);
            if core::str::from_utf8(c.values.get(start..end).unwrap_or(&[])).is_err() {
                return ERR_BAD_UTF8;
            }
        }
    }
    // SAFETY: one call at a time; no other reference to RESULT is alive.
    let (out, desc) = unsafe { &mut *RESULT.0.get() };
    out.reset();
    out.values.reserve(rows * 8);
    out.validity.reserve(rows.div_ceil(8));
    for i in 0..rows {
        row(&cols, i, out);
    }
    publish(out, desc)
}

/// Runs a filter over a batch. When every argument is a NULL-free BIGINT
/// or DOUBLE column (and no argument is an `Option`), `fast` is called with
/// the columns as 8-byte words and the bitmap is built a byte at a time;
/// otherwise `row` handles each row as in [`call`].
pub fn call_filter(
    args: u32,
    rows: u32,
    types: &[SqlType],
    nullable: &[bool],
    row: impl FnMut(&[Column<'_>], usize, &mut Output),
    fast: impl Fn(&[&[u64]], usize) -> bool,
) -> i32 {
    let n = rows as usize;
    // SAFETY: the host wrote `types.len()` descriptors at `args` for this call.
    let cols = unsafe { columns(args, types.len(), n) };
    let words_ok = types.iter().zip(nullable).zip(&cols).all(|((t, nul), c)| {
        matches!(t, SqlType::BigInt | SqlType::Double)
            && !nul
            && c.validity.is_none()
            && c.words.len() >= n
    });
    if !words_ok {
        return call(args, rows, types, row);
    }
    let words: Vec<&[u64]> = cols.iter().map(|c| &c.words[..n]).collect();
    // SAFETY: one call at a time; no other reference to RESULT is alive.
    let (out, desc) = unsafe { &mut *RESULT.0.get() };
    out.reset();
    out.values.resize(n.div_ceil(8), 0);
    for (b, byte) in out.values.iter_mut().enumerate() {
        let start = b * 8;
        let mut bits = 0u8;
        for j in 0..8.min(n - start) {
            bits |= u8::from(fast(&words, start + j)) << j;
        }
        *byte = bits;
    }
    out.rows = n;
    publish(out, desc)
}

/// Points the result descriptor at `out`'s buffers; returns its address
/// (what an entry point returns on success).
fn publish(out: &Output, desc: &mut ColumnDesc) -> i32 {
    *desc = ColumnDesc {
        values: out.values.as_ptr() as usize as u32,
        values_len: out.values.len() as u32,
        validity: if out.nulls == 0 {
            0
        } else {
            out.validity.as_ptr() as usize as u32
        },
        offsets: if out.offsets.is_empty() {
            0
        } else {
            out.offsets.as_ptr() as usize as u32
        },
    };
    desc as *const ColumnDesc as usize as i32
}

/// Writes a filter's verdict: a set bit for a row that passes (NULL → dropped).
#[inline]
pub fn pass(out: &mut Output, yes: bool) {
    let i = out.rows;
    if i.is_multiple_of(8) {
        out.values.push(0);
    }
    if let Some(byte) = out.values.last_mut() {
        *byte |= u8::from(yes) << (i % 8);
    }
    out.rows += 1;
}

/// The self-description of one function as `(pointer << 32) | length` of
/// its JSON text, kept alive for the instance's life.
pub fn describe(name: &str, kind: &str, args: &[(SqlType, bool)], ret: Option<SqlType>) -> u64 {
    let mut json = String::new();
    json.push_str("{\"abi\":1,\"name\":\"");
    json.push_str(name);
    json.push_str("\",\"kind\":\"");
    json.push_str(kind);
    json.push_str("\",\"args\":[");
    for (i, (t, nullable)) in args.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str("{\"type\":\"");
        json.push_str(t.name());
        json.push_str(if *nullable {
            "\",\"nullable\":true}"
        } else {
            "\",\"nullable\":false}"
        });
    }
    json.push_str("],\"ret\":");
    match ret {
        Some(t) => {
            json.push('"');
            json.push_str(t.name());
            json.push('"');
        }
        None => json.push_str("null"),
    }
    json.push('}');
    // SAFETY: one call at a time; the strings live as long as the instance.
    let keep = unsafe { &mut *DESCRIPTIONS.0.get() };
    let packed = ((json.as_ptr() as usize as u64) << 32) | json.len() as u64;
    keep.push(json);
    packed
}

/// `__eddy_abi_version`: the ABI marker the host checks before anything else.
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
pub extern "C" fn __eddy_abi_version() -> u32 {
    crate::ABI_VERSION
}

/// `__eddy_alloc(size)`: memory for the host to write arguments into
/// (8-byte aligned); 0 when it cannot be had.
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
pub extern "C" fn __eddy_alloc(size: u32) -> u32 {
    let Ok(layout) = core::alloc::Layout::from_size_align(size.max(1) as usize, 8) else {
        return 0;
    };
    // SAFETY: a non-zero size and a valid alignment.
    unsafe { alloc::alloc::alloc(layout) as usize as u32 }
}

/// `__eddy_free(ptr, size)`: returns memory from [`__eddy_alloc`].
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
pub extern "C" fn __eddy_free(ptr: u32, size: u32) {
    if ptr == 0 {
        return;
    }
    if let Ok(layout) = core::alloc::Layout::from_size_align(size.max(1) as usize, 8) {
        // SAFETY: the host passes back a pointer and size it got from __eddy_alloc.
        unsafe { alloc::alloc::dealloc(ptr as usize as *mut u8, layout) }
    }
}

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
