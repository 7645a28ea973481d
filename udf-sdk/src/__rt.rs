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

mod aggregate;
pub use aggregate::*;
