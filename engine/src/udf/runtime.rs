//! Who owns UDF instances: the thread that runs them. Each worker thread
//! keeps one instance per module, created on first use and shared by every
//! operator and expression of that thread that calls the module (scalars,
//! filters, aggregate tables). One policy for every kind of UDF: an instance
//! that failed once (trap, time limit, memory cap, bad result) is dropped
//! and the next call on that thread gets a fresh one; a failed call fails
//! its query with the error.
//!
//! Instances never cross threads, so a worker's calls never wait for
//! another's, and a job's threads ending drops its instances.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;

use crate::udf::{UdfError, UdfInstance, UdfModule};

/// An instance and the operator state (aggregate tables) inside it; the
/// lock is never contended (one thread uses it).
pub type SharedInstance = Arc<Mutex<UdfInstance>>;

thread_local! {
    /// This thread's instances, by module (its address: a module loaded
    /// twice is two modules; the lookup is on every call, so it must be cheap).
    static INSTANCES: RefCell<FxHashMap<usize, SharedInstance>> = RefCell::new(FxHashMap::default());
}

fn key(module: &UdfModule) -> usize {
    std::ptr::from_ref(module) as usize
}

/// This thread's instance of `module`, instantiated on first use.
///
/// # Errors
/// The module cannot be instantiated (see [`UdfInstance::new`]).
pub fn instance(module: &UdfModule) -> Result<SharedInstance, UdfError> {
    if let Some(i) = INSTANCES.with(|m| m.borrow().get(&key(module)).cloned()) {
        return Ok(i);
    }
    let fresh = Arc::new(Mutex::new(UdfInstance::new(module)?));
    INSTANCES.with(|m| m.borrow_mut().insert(key(module), fresh.clone()));
    Ok(fresh)
}

/// Runs `f` on this thread's instance of `module`; after a failure the
/// instance is dropped.
///
/// # Errors
/// The module cannot be instantiated, or `f` failed.
pub fn with_instance<T>(
    module: &UdfModule,
    f: impl FnOnce(&mut UdfInstance) -> Result<T, UdfError>,
) -> Result<T, UdfError> {
    let shared = instance(module)?;
    let result = f(&mut lock(&shared));
    checked(&shared, result)
}

/// Passes `result` on; on an error, first drops `instance` from this
/// thread's instances so it is never used again.
pub fn checked<T>(instance: &SharedInstance, result: Result<T, UdfError>) -> Result<T, UdfError> {
    if result.is_err() {
        INSTANCES.with(|m| {
            m.borrow_mut().retain(|_, i| !Arc::ptr_eq(i, instance));
        });
    }
    result
}

/// Locks an instance; a poisoned lock (a panic while it was held, which
/// fails the query anyway) still gives the instance.
pub fn lock(instance: &SharedInstance) -> MutexGuard<'_, UdfInstance> {
    instance.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many instances this thread holds (for tests).
pub fn instances_on_this_thread() -> usize {
    INSTANCES.with(|m| m.borrow().len())
}
