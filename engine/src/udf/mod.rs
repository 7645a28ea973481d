//! WebAssembly user-defined functions: the host side of ABI v1 (see
//! `docs/abi.md`).
//!
//! One process-wide `wasmtime::Engine` (epoch interruption on, a ticker
//! thread advancing the epoch every [`TICK`]); a module is validated and
//! compiled once ([`UdfModule`], with its `InstancePre` so instantiating is
//! cheap); each worker thread owns one `Store` + instance ([`UdfInstance`])
//! per module it calls ([`runtime`]), reused batch after batch.
//! Guest memory is capped per instance, every call has a deadline, no WASI or
//! other host function is linked, and guest memory is read and written only
//! through bounds-checked copies. A trap, timeout or malformed result fails
//! the calling query with an error naming the function; the instance is then
//! discarded.

pub mod examples;
mod instance;
mod instance_agg;
mod module;
pub mod registry;
pub mod runtime;
pub mod try_call;

use std::sync::OnceLock;
use std::time::Duration;

pub use instance::UdfInstance;
pub use module::{UdfKind, UdfModule, UdfSignature};

/// How often the epoch advances.
pub const TICK: Duration = Duration::from_millis(10);

/// Limits applied to every instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdfLimits {
    /// Linear memory per instance, in bytes (default 64 MiB).
    pub memory_bytes: usize,
    /// Longest a single call may run (default 1 s).
    pub call_timeout: Duration,
    /// Largest module accepted at registration, in bytes (default 16 MiB).
    pub module_bytes: usize,
    /// How much address space a linear memory reserves.
    pub address_space: AddressSpace,
}

/// How much address space an instance's linear memory reserves: a speed
/// against address-space trade (docs/udf-guide.md, "Limits"; measured in
/// docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressSpace {
    /// 4 GiB and guard pages, wasmtime's layout: a memory access needs no
    /// bounds check (the fastest calls). Only address space: the memory
    /// limit still caps what is used.
    GuardPages,
    /// The memory limit (whole pages) and a guard region: for a process
    /// whose address space is limited (`ulimit -v`) or that runs very many
    /// instances; every access is bounds-checked.
    Limit,
}

impl AddressSpace {
    /// [`AddressSpace::Limit`] when the process's address space is limited
    /// (`ulimit -v`: 4 GiB an instance would soon exhaust it), else
    /// [`AddressSpace::GuardPages`].
    pub fn auto() -> Self {
        let limited = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| {
                l.lines()
                    .find(|l| l.starts_with("Max address space"))
                    .map(|l| !l.contains("unlimited"))
            })
            .unwrap_or(false);
        if limited {
            AddressSpace::Limit
        } else {
            AddressSpace::GuardPages
        }
    }
}

impl Default for UdfLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_secs(1),
            module_bytes: 16 << 20,
            address_space: AddressSpace::auto(),
        }
    }
}

/// What went wrong with a UDF module or call.
#[derive(Debug, thiserror::Error)]
pub enum UdfError {
    /// The bytes are not a valid WebAssembly module.
    #[error("{name}: not a valid WebAssembly module: {reason}")]
    Invalid {
        /// Module name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The module lacks the ABI marker or speaks another version.
    #[error("{name}: {reason}")]
    Abi {
        /// Module name.
        name: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The module is larger than allowed.
    #[error("{name}: the module is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Module name.
        name: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Arguments given to a function by hand (the try-it call) do not fit it.
    #[error("{function}: {reason}")]
    Input {
        /// The SQL function.
        function: String,
        /// What is wrong.
        reason: String,
    },
    /// A call failed: trap, timeout, memory limit, bad result.
    #[error("UDF {function} failed: {reason}")]
    Call {
        /// The SQL function.
        function: String,
        /// Why.
        reason: String,
    },
    /// The WebAssembly engine could not be created.
    #[error("the WebAssembly engine could not be created: {0}")]
    Engine(String),
    /// The registry could not be read or written.
    #[error("UDF registry at {path}: {reason}")]
    Registry {
        /// The data directory or file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The engine for instances with these limits, with epoch interruption.
/// Under [`AddressSpace::Limit`] its linear memories reserve address space
/// for the memory limit (rounded up to whole pages) and a guard region, not
/// the 4 GiB wasmtime reserves by default. One engine per layout (a process
/// normally has one); one thread advances every engine's epoch each [`TICK`].
///
/// # Errors
/// [`UdfError::Engine`]: the engine or its ticker thread could not be
/// created (then no UDF can run: without the ticker a call has no time limit).
pub(crate) fn engine(limits: &UdfLimits) -> Result<wasmtime::Engine, UdfError> {
    type Engines = std::sync::Mutex<Vec<(u64, wasmtime::Engine)>>;
    static ENGINES: OnceLock<Result<std::sync::Arc<Engines>, String>> = OnceLock::new();
    let engines = ENGINES
        .get_or_init(|| {
            let engines: std::sync::Arc<Engines> = std::sync::Arc::default();
            let ticker = engines.clone();
            std::thread::Builder::new()
                .name("eddy-udf-epoch".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(TICK);
                        for (_, e) in ticker.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                            e.increment_epoch();
                        }
                    }
                })
                .map_err(|e| format!("cannot start the UDF time-limit thread: {e}"))?;
            Ok(engines)
        })
        .as_ref()
        .map_err(|reason| UdfError::Engine(reason.clone()))?;
    // 0: wasmtime's own layout
    let reservation = match limits.address_space {
        AddressSpace::GuardPages => 0,
        AddressSpace::Limit => reservation(limits.memory_bytes),
    };
    let mut engines = engines.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, e)) = engines.iter().find(|(r, _)| *r == reservation) {
        return Ok(e.clone());
    }
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    if reservation > 0 {
        // memory never grows past the limit (the store's limiter refuses),
        // so never past the reservation: it need not move, and code may
        // keep its base address in a register
        config.memory_reservation(reservation);
        config.memory_reservation_for_growth(0);
        config.memory_may_move(false);
    }
    let engine = wasmtime::Engine::new(&config).map_err(|e| UdfError::Engine(format!("{e:#}")))?;
    engines.push((reservation, engine.clone()));
    Ok(engine)
}

/// The address space a linear memory of at most `memory_bytes` reserves:
/// whole 64 KiB pages, at least one.
fn reservation(memory_bytes: usize) -> u64 {
    const PAGE: u64 = 64 << 10;
    (memory_bytes as u64).div_ceil(PAGE).max(1) * PAGE
}
