//! A module that claims ABI version 2: the host must refuse it at registration.

/// The ABI marker, with a version this Eddy does not speak.
#[unsafe(no_mangle)]
pub extern "C" fn __eddy_abi_version() -> u32 {
    2
}

/// A function the host must never get to call.
#[unsafe(no_mangle)]
pub extern "C" fn __eddy_call_future(_args: u32, _rows: u32) -> i32 {
    0
}
