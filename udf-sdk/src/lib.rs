//! # eddy-udf: user-defined functions for Eddy, in Rust, run as WebAssembly
//!
//! Write a plain Rust function, mark it, build the crate for
//! `wasm32-unknown-unknown`, register the `.wasm` with Eddy and call the
//! function from SQL:
//!
//! ```ignore
//! #[eddy_udf::filter]
//! fn in_region(lat: f64, lon: f64) -> bool {
//!     (45.0..=48.0).contains(&lat) && (5.0..=11.0).contains(&lon)
//! }
//!
//! #[eddy_udf::scalar]
//! fn fee(price: f64, channel: &str) -> f64 {
//!     if channel == "Apple" { price * 0.3 } else { price * 0.1 }
//! }
//! ```
//!
//! * Argument types: `i64`, `f64`, `bool`, `&str`, and `Option<T>` of those
//!   (SQL `BIGINT`, `DOUBLE`, `BOOLEAN`, `VARCHAR`). A non-`Option` argument
//!   never sees NULL: a row with a NULL there gives NULL (a filter: drops the
//!   row) without calling the function. `Option<T>` receives `None` for NULL.
//! * Result types: `i64`, `f64`, `bool`, `String`, or `Option<T>` of those
//!   (`None` is NULL). A filter returns `bool`.
//! * The function stays an ordinary Rust function: unit-test it natively
//!   with `cargo test`.
//!
//! The macros generate the batch entry points of the ABI (one call per
//! batch of rows, columns in Arrow layout; see `docs/abi.md` in the Eddy
//! repository), a self-description the host reads (name, kind, SQL types) and
//! the ABI version marker. Misuse (a generic function, an unsupported type) is
//! a compile error that says what to write instead.
//!
//! The crate is `no_std` + `alloc` without its default `std` feature; the
//! module must then provide a `#[global_allocator]`.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use eddy_udf_macros::{filter, scalar};

/// The ABI version this SDK speaks; the host refuses modules of another one.
pub const ABI_VERSION: u32 = eddy_udf_abi::ABI_VERSION;

#[doc(hidden)]
pub mod __rt;

pub use eddy_udf_macros::aggregate;

/// An aggregate function: one state per group, fed rows of its arguments.
///
/// Put `#[eddy_udf::aggregate]` on the `impl Aggregate for T` block; the SQL
/// name is `T`'s name in snake case (`Median` → `median`), or give one:
/// `#[eddy_udf::aggregate(name = "p90")]`. `T::default()` is the empty state.
///
/// ```ignore
/// #[derive(Default)]
/// pub struct Median(Vec<f64>);
///
/// #[eddy_udf::aggregate]
/// impl eddy_udf::Aggregate for Median {
///     type Input<'a> = f64;
///     type Output = f64;
///     fn update(&mut self, x: f64) { self.0.push(x) }
///     fn merge(&mut self, other: Self) { self.0.extend(other.0) }
///     fn finish(&self) -> Option<f64> { /* ... */ None }
///     fn to_bytes(&self) -> Vec<u8> { self.0.iter().flat_map(|x| x.to_le_bytes()).collect() }
///     fn from_bytes(b: &[u8]) -> Option<Self> { /* ... */ None }
/// }
/// ```
pub trait Aggregate: Default + 'static {
    /// The argument: one of `i64`, `f64`, `bool`, `&str`, `Option<..>`, or a
    /// tuple of two or three of them (`(f64, f64)` for `weighted_avg(x, w)`).
    /// A row with NULL in a non-`Option` argument is skipped.
    type Input<'a>;
    /// The result type (`i64`, `f64`, `bool`, `String`).
    type Output;

    /// Adds one row.
    fn update(&mut self, input: Self::Input<'_>);

    /// Adds another partial state of the same group (hopping-window panes,
    /// merged sessions, partial results).
    fn merge(&mut self, other: Self);

    /// Removes a row added before, for row windows (`OVER ... ROWS n
    /// PRECEDING`), where rows leave the frame. Return `false` (the default)
    /// if the aggregate cannot: Eddy then aggregates each frame afresh.
    fn retract(&mut self, input: Self::Input<'_>) -> bool {
        let _ = input;
        false
    }

    /// The result for the rows added so far; `None` is NULL.
    fn finish(&self) -> Option<Self::Output>;

    /// The state as bytes; [`Aggregate::from_bytes`] must read it back.
    fn to_bytes(&self) -> alloc::vec::Vec<u8>;

    /// A state from [`Aggregate::to_bytes`]; `None` when the bytes are not one.
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}
