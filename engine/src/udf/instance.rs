//! One instance of a UDF module in its own `Store`: memory-capped, every call
//! under an epoch deadline, arguments and results copied through
//! bounds-checked reads and writes of guest memory.

use eddy_udf_abi::{
    CALL_PREFIX, DESCRIBE_PREFIX, ERR_BAD_INPUT, EXPORT_ABI_VERSION, EXPORT_ALLOC, EXPORT_FREE,
    error_text,
};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use wasmtime::{Instance, Memory, ResourceLimiter, Store, Trap, TypedFunc};

use crate::types::SqlType;
use crate::udf::module::ABI_VERSION;
use crate::udf::{TICK, UdfError, UdfLimits, UdfModule};

/// Store data: the memory cap, and whether the guest hit it.
pub(crate) struct Limits {
    memory_bytes: usize,
    denied: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.memory_bytes;
        self.denied |= !ok;
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A column as the ABI lays it out: up to three byte buffers, borrowed
/// from the Arrow array where its layout already is the ABI's.
struct Laid<'a> {
    values: std::borrow::Cow<'a, [u8]>,
    validity: Option<Vec<u8>>,
    offsets: Option<Vec<u8>>,
}

/// A live instance; not shared between threads.
pub struct UdfInstance {
    pub(super) store: Store<Limits>,
    instance: Instance,
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    free: TypedFunc<(u32, u32), ()>,
    /// Guest buffer for arguments, reused while large enough: (ptr, size).
    scratch: (u32, u32),
    /// Entry points looked up so far, by function.
    entries: std::collections::HashMap<String, TypedFunc<(u32, u32), i32>>,
    limits: UdfLimits,
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

impl UdfInstance {
    /// Instantiates `module` with no imports.
    ///
    /// # Errors
    /// The module traps on start, lacks memory or the allocator exports.
    pub fn new(module: &UdfModule) -> Result<Self, UdfError> {
        let limits = module.limits;
        let fail = |reason: String| UdfError::Call {
            function: module.name.clone(),
            reason,
        };
        let mut store = Store::new(
            module.pre.module().engine(),
            Limits {
                memory_bytes: limits.memory_bytes,
                denied: false,
            },
        );
        store.limiter(|l| l as &mut dyn ResourceLimiter);
        store.set_epoch_deadline(deadline_ticks(limits));
        let instance = module
            .pre
            .instantiate(&mut store)
            .map_err(|e| {
                let e = format!("{e:#}");
                let hint = if e.contains("failed to reserve") {
                    " (the process's address space is too small for 4 GiB an instance: run with --udf-address-space limit, or raise ulimit -v)"
                } else {
                    ""
                };
                fail(format!("cannot be instantiated: {e}{hint}"))
            })?;
        // the ABI marker first: a module of another version may lack the rest
        let version = instance
            .get_typed_func::<(), u32>(&mut store, EXPORT_ABI_VERSION)
            .and_then(|f| f.call(&mut store, ()))
            .map_err(|e| UdfError::Abi {
                name: module.name.clone(),
                reason: format!("its ABI marker __eddy_abi_version fails: {e}"),
            })?;
        if version != ABI_VERSION {
            return Err(UdfError::Abi {
                name: module.name.clone(),
                reason: format!(
                    "built for UDF ABI version {version}, but this Eddy speaks version {ABI_VERSION}; rebuild it with a matching eddy-udf SDK"
                ),
            });
        }
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| fail("exports no memory".into()))?;
        let alloc = instance
            .get_typed_func::<u32, u32>(&mut store, EXPORT_ALLOC)
            .map_err(|_| fail("has no __eddy_alloc(size) -> ptr export".into()))?;
        let free = instance
            .get_typed_func::<(u32, u32), ()>(&mut store, EXPORT_FREE)
            .map_err(|_| fail("has no __eddy_free(ptr, size) export".into()))?;
        Ok(Self {
            store,
            instance,
            memory,
            alloc,
            free,
            scratch: (0, 0),
            entries: std::collections::HashMap::new(),
            limits,
        })
    }

    /// The JSON self-description of `function`.
    pub(crate) fn describe(&mut self, function: &str) -> Result<String, String> {
        let f = self
            .instance
            .get_typed_func::<(), u64>(&mut self.store, &format!("{DESCRIBE_PREFIX}{function}"))
            .map_err(|e| format!("{e}"))?;
        self.arm_deadline();
        let packed = f.call(&mut self.store, ()).map_err(|e| format!("{e}"))?;
        let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        if len > 64 << 10 {
            return Err(format!("a description of {len} bytes is not plausible"));
        }
        let mut buf = vec![0u8; len];
        self.memory
            .read(&self.store, ptr, &mut buf)
            .map_err(|_| "the description lies outside guest memory".to_string())?;
        String::from_utf8(buf).map_err(|_| "the description is not UTF-8".into())
    }

    /// Calls `function` once over a whole batch: `args` are its argument
    /// columns (already cast to its argument types), `ret` its result type.
    /// A filter's result is a BOOLEAN column without NULLs.
    ///
    /// # Errors
    /// [`UdfError::Call`] naming `function`: a trap (panic, out-of-bounds
    /// access), the deadline, the memory cap, or a result that does not fit.
    pub fn call(
        &mut self,
        function: &str,
        args: &[ArrayRef],
        rows: usize,
        ret: SqlType,
    ) -> Result<ArrayRef, UdfError> {
        let fail = |reason: String| UdfError::Call {
            function: function.to_string(),
            reason,
        };
        let entry = match self.entries.get(function) {
            Some(e) => e.clone(),
            None => {
                let e = self
                    .instance
                    .get_typed_func::<(u32, u32), i32>(
                        &mut self.store,
                        &format!("{CALL_PREFIX}{function}"),
                    )
                    .map_err(|_| fail("the module has no entry point for it".into()))?;
                self.entries.insert(function.to_string(), e.clone());
                e
            }
        };
        let (base, _) = self.write_args(args, None).map_err(fail)?;
        self.arm_deadline();
        let code = entry
            .call(&mut self.store, (base, rows as u32))
            .map_err(|e| fail(self.explain(e)))?;
        check_code(code).map_err(fail)?;
        self.read_result(code as u32, rows, ret).map_err(fail)
    }

    /// Writes argument columns (and optionally group indexes) into the
    /// argument region: descriptors first, then each buffer, 8-byte aligned.
    /// Returns the descriptors' address and the group indexes' address.
    pub(super) fn write_args(
        &mut self,
        args: &[ArrayRef],
        groups: Option<&[u32]>,
    ) -> Result<(u32, u32), String> {
        let laid: Vec<Laid> = args.iter().map(lay_out).collect::<Result<_, _>>()?;
        let descs = align8(16 * laid.len());
        let group_bytes = groups.map_or(0, |g| align8(g.len() * 4));
        let mut total = descs + group_bytes;
        for l in &laid {
            total += align8(l.values.len());
            total += l.validity.as_ref().map_or(0, |v| align8(v.len()));
            total += l.offsets.as_ref().map_or(0, |o| align8(o.len()));
        }
        let base = self.reserve(total.max(8)).map_err(|r| self.explain(r))?;
        let mut at = base as usize + descs;
        let mut put =
            |store: &mut Store<Limits>, memory: &Memory, bytes: &[u8]| -> Result<u32, String> {
                let ptr = at;
                memory
                    .write(store, ptr, bytes)
                    .map_err(|_| "argument buffer outside guest memory".to_string())?;
                at += align8(bytes.len());
                Ok(ptr as u32)
            };
        let mut desc_bytes = Vec::with_capacity(16 * laid.len());
        for l in &laid {
            let values = put(&mut self.store, &self.memory, &l.values)?;
            let validity = match &l.validity {
                Some(v) => put(&mut self.store, &self.memory, v)?,
                None => 0,
            };
            let offsets = match &l.offsets {
                Some(o) => put(&mut self.store, &self.memory, o)?,
                None => 0,
            };
            for word in [values, l.values.len() as u32, validity, offsets] {
                desc_bytes.extend_from_slice(&word.to_le_bytes());
            }
        }
        let groups_at = match groups {
            Some(g) => {
                let bytes: Vec<u8> = g.iter().flat_map(|x| x.to_le_bytes()).collect();
                put(&mut self.store, &self.memory, &bytes)?
            }
            None => 0,
        };
        self.memory
            .write(&mut self.store, base as usize, &desc_bytes)
            .map_err(|_| "argument descriptors outside guest memory".to_string())?;
        Ok((base, groups_at))
    }

    /// A guest function of the module, by export name.
    pub(super) fn export<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
    ) -> Result<TypedFunc<P, R>, String> {
        self.instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .map_err(|_| format!("the module has no {name} export"))
    }

    /// The size of the instance's linear memory, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    /// Gives the next guest call the configured time.
    pub(super) fn arm_deadline(&mut self) {
        self.store.set_epoch_deadline(deadline_ticks(self.limits));
    }

    /// Makes sure the argument region holds `size` bytes; returns its pointer.
    pub(super) fn reserve(&mut self, size: usize) -> Result<u32, wasmtime::Error> {
        let size = u32::try_from(size)
            .map_err(|_| wasmtime::Error::msg("a batch larger than 4 GiB of arguments"))?;
        if self.scratch.1 >= size {
            return Ok(self.scratch.0);
        }
        self.arm_deadline();
        if self.scratch.0 != 0 {
            self.free
                .call(&mut self.store, (self.scratch.0, self.scratch.1))?;
            self.scratch = (0, 0);
        }
        // grow geometrically so a few batch sizes settle quickly
        let want = size.max(64 << 10).next_power_of_two();
        let ptr = self.alloc.call(&mut self.store, want)?;
        if ptr == 0 {
            return Err(wasmtime::Error::msg(format!(
                "it could not allocate {want} bytes for the arguments"
            )));
        }
        self.scratch = (ptr, want);
        Ok(ptr)
    }

    /// Why a call failed, in words.
    pub(super) fn explain(&self, e: wasmtime::Error) -> String {
        if self.store.data().denied {
            return format!(
                "it exceeded its memory limit of {} MiB",
                self.limits.memory_bytes >> 20
            );
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => format!(
                "it ran longer than its time limit of {} ms and was interrupted",
                self.limits.call_timeout.as_millis()
            ),
            Some(Trap::UnreachableCodeReached) => {
                "it panicked or aborted (wasm trap: unreachable)".into()
            }
            Some(Trap::StackOverflow) => "it overflowed its stack".into(),
            Some(Trap::MemoryOutOfBounds) => "it accessed memory out of bounds".into(),
            Some(t) => format!("wasm trap: {t}"),
            None => format!("{e:#}"),
        }
    }

    /// Reads and checks the result column whose descriptor is at `at`.
    pub(super) fn read_result(
        &mut self,
        at: u32,
        rows: usize,
        ret: SqlType,
    ) -> Result<ArrayRef, String> {
        let mut d = [0u8; 16];
        self.read(at, &mut d)?;
        let word =
            |i: usize| u32::from_le_bytes([d[i * 4], d[i * 4 + 1], d[i * 4 + 2], d[i * 4 + 3]]);
        let (values, values_len, validity) = (word(0), word(1) as usize, word(2));
        let bitmap_len = rows.div_ceil(8);
        let nulls = if validity == 0 {
            None
        } else {
            let mut v = vec![0u8; bitmap_len];
            self.read(validity, &mut v)?;
            Some(NullBuffer::new(BooleanBuffer::new(
                Buffer::from(v),
                0,
                rows,
            )))
        };
        let bad = |what: &str| format!("its result is malformed: {what}");
        let array: ArrayRef = match ret {
            SqlType::BigInt | SqlType::Double => {
                if values_len != rows * 8 {
                    return Err(bad(&format!(
                        "{values_len} bytes of values for {rows} rows"
                    )));
                }
                let mut v = vec![0u8; values_len];
                self.read(values, &mut v)?;
                let buf = Buffer::from(v);
                if ret == SqlType::BigInt {
                    Arc::new(Int64Array::new(ScalarBuffer::new(buf, 0, rows), nulls))
                } else {
                    Arc::new(Float64Array::new(ScalarBuffer::new(buf, 0, rows), nulls))
                }
            }
            SqlType::Boolean => {
                if values_len < bitmap_len {
                    return Err(bad("the boolean bitmap is too short"));
                }
                let mut v = vec![0u8; bitmap_len];
                self.read(values, &mut v)?;
                Arc::new(BooleanArray::new(
                    BooleanBuffer::new(Buffer::from(v), 0, rows),
                    nulls,
                ))
            }
            SqlType::Varchar => {
                let (offsets, data, nulls) = self.read_variable(at, rows)?;
                let array =
                    StringArray::try_new(offsets, data, nulls).map_err(|e| bad(&format!("{e}")))?;
                Arc::new(array)
            }
            other => return Err(bad(&format!("unsupported result type {other}"))),
        };
        Ok(array)
    }

    /// The offsets, data and validity of a variable-length result column
    /// (VARCHAR or BINARY) whose descriptor is at `at`, checked.
    pub(super) fn read_variable(
        &mut self,
        at: u32,
        rows: usize,
    ) -> Result<(OffsetBuffer<i32>, Buffer, Option<NullBuffer>), String> {
        let mut d = [0u8; 16];
        self.read(at, &mut d)?;
        let word =
            |i: usize| u32::from_le_bytes([d[i * 4], d[i * 4 + 1], d[i * 4 + 2], d[i * 4 + 3]]);
        let (values, values_len, validity, offsets) = (word(0), word(1) as usize, word(2), word(3));
        let bad = |what: &str| format!("its result is malformed: {what}");
        if offsets == 0 {
            return Err(bad("a variable-length result without offsets"));
        }
        let mut o = vec![0u8; (rows + 1) * 4];
        self.read(offsets, &mut o)?;
        let offs: Vec<i32> = o
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let monotonic = offs.first() == Some(&0)
            && offs.windows(2).all(|w| w[0] <= w[1])
            && offs.last().is_some_and(|&l| l as usize == values_len);
        if !monotonic {
            return Err(bad("offsets are not increasing within the data"));
        }
        let mut data = vec![0u8; values_len];
        self.read(values, &mut data)?;
        let nulls = if validity == 0 {
            None
        } else {
            let mut v = vec![0u8; rows.div_ceil(8)];
            self.read(validity, &mut v)?;
            Some(NullBuffer::new(BooleanBuffer::new(
                Buffer::from(v),
                0,
                rows,
            )))
        };
        Ok((
            OffsetBuffer::new(ScalarBuffer::from(offs)),
            Buffer::from(data),
            nulls,
        ))
    }

    /// Copies guest memory at `at` into `buf`; fails outside the memory.
    pub(super) fn read(&self, at: u32, buf: &mut [u8]) -> Result<(), String> {
        self.memory
            .read(&self.store, at as usize, buf)
            .map_err(|_| "its result points outside its memory".to_string())
    }
}

pub(super) fn call_error(function: &str, reason: String) -> UdfError {
    UdfError::Call {
        function: function.to_string(),
        reason,
    }
}

/// The meaning of a negative return code.
pub(super) fn check_code(code: i32) -> Result<(), String> {
    match code {
        c if c >= 0 => Ok(()),
        ERR_BAD_INPUT => Err(format!(
            "{} (error {ERR_BAD_INPUT}); this is a bug in Eddy or the SDK",
            error_text(ERR_BAD_INPUT).unwrap_or_default()
        )),
        c => Err(match error_text(c) {
            Some(text) => format!("{text} (error {c})"),
            None => format!("it returned error code {c}"),
        }),
    }
}

/// Epoch ticks for one call's time limit.
fn deadline_ticks(limits: UdfLimits) -> u64 {
    (limits.call_timeout.as_millis() / TICK.as_millis()).max(1) as u64 + 1
}

/// A column in ABI layout (see `docs/abi.md`).
fn lay_out(a: &ArrayRef) -> Result<Laid<'_>, String> {
    let validity = a
        .logical_nulls()
        .filter(|n| n.null_count() > 0)
        .map(|n| n.inner().sliced().as_slice().to_vec());
    Ok(match a.data_type() {
        DataType::Int64 => {
            let v = a.as_primitive::<Int64Type>();
            Laid {
                values: first_bytes(v.values().inner().as_slice(), v.len() * 8).into(),
                validity,
                offsets: None,
            }
        }
        DataType::Float64 => {
            let v = a.as_primitive::<Float64Type>();
            Laid {
                values: first_bytes(v.values().inner().as_slice(), v.len() * 8).into(),
                validity,
                offsets: None,
            }
        }
        DataType::Boolean => Laid {
            values: a.as_boolean().values().sliced().as_slice().to_vec().into(),
            validity,
            offsets: None,
        },
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            variable(s.value_offsets(), s.value_data(), validity)
        }
        DataType::Binary => {
            let s = a.as_binary::<i32>();
            variable(s.value_offsets(), s.value_data(), validity)
        }
        other => return Err(format!("cannot pass a {other} column to a UDF")),
    })
}

/// A VARCHAR or BINARY column in ABI layout: its data from the first offset
/// on, and its offsets rebased to start at 0.
fn variable<'a>(offsets: &[i32], data: &'a [u8], validity: Option<Vec<u8>>) -> Laid<'a> {
    let (first, last) = (offsets[0], offsets[offsets.len() - 1]);
    Laid {
        values: data[first as usize..last as usize].into(),
        validity,
        offsets: Some(
            offsets
                .iter()
                .flat_map(|o| (o - first).to_le_bytes())
                .collect(),
        ),
    }
}

/// The first `len` bytes of a values buffer (already sliced to its array).
fn first_bytes(buf: &[u8], len: usize) -> &[u8] {
    buf.get(..len).unwrap_or_default()
}
