//! The one definition of Eddy's WebAssembly UDF ABI, shared by the host
//! (the `eddy` engine) and the guest SDK (`eddy-udf` and its macros): the
//! version, the names of the exports, the SQL types at the boundary, the
//! column descriptor's size and the error codes. `docs/abi.md` in the Eddy
//! repository is the full specification; its changelog records each version.
//!
//! `no_std`, no dependencies: it builds for `wasm32-unknown-unknown` as well
//! as for the host and for proc macros.

#![no_std]

/// The ABI version; the host refuses a module that speaks another one.
pub const ABI_VERSION: u32 = 1;

/// `__eddy_abi_version() -> u32`: the marker the host checks first.
pub const EXPORT_ABI_VERSION: &str = "__eddy_abi_version";
/// `__eddy_alloc(size) -> ptr`: memory for the host to write arguments into.
pub const EXPORT_ALLOC: &str = "__eddy_alloc";
/// `__eddy_free(ptr, size)`: gives memory from `__eddy_alloc` back.
pub const EXPORT_FREE: &str = "__eddy_free";
/// `__eddy_describe_<name>() -> u64`: the function's JSON self-description
/// (pointer in the low, length in the high 32 bits).
pub const DESCRIBE_PREFIX: &str = "__eddy_describe_";
/// `__eddy_call_<name>(args, rows) -> i32`: a scalar or filter over one batch.
pub const CALL_PREFIX: &str = "__eddy_call_";
/// `__eddy_agg_<op>_<name>`: the entry points of an aggregate, one per
/// operation (`new`, `drop`, `clear`, `update`, `merge`, `slide`, `finish`,
/// `state`).
pub const AGG_PREFIX: &str = "__eddy_agg_";

/// Bytes of one column descriptor: four little-endian `u32` (values
/// pointer, values length, validity pointer or 0, offsets pointer or 0).
pub const COLUMN_DESC_SIZE: usize = 16;

/// Error: a descriptor is malformed (lengths do not match the row count).
pub const ERR_BAD_INPUT: i32 = -1;
/// Error: a VARCHAR argument is not UTF-8.
pub const ERR_BAD_UTF8: i32 = -2;
/// Error: the handle is not an open table of this aggregate.
pub const ERR_BAD_HANDLE: i32 = -3;
/// Error: a partial state's bytes do not decode.
pub const ERR_BAD_STATE: i32 = -4;
/// Error: the aggregate cannot retract rows (its `retract` returned false).
pub const ERR_NO_RETRACT: i32 = -5;

/// What a negative return code means, for error messages; `None` for a
/// code this version does not define.
pub fn error_text(code: i32) -> Option<&'static str> {
    Some(match code {
        ERR_BAD_INPUT => "it rejected its input as malformed",
        ERR_BAD_UTF8 => "a VARCHAR argument was not UTF-8",
        ERR_BAD_HANDLE => "an aggregate handle was unknown to it",
        ERR_BAD_STATE => "a partial state did not decode",
        ERR_NO_RETRACT => "the aggregate cannot retract rows",
        _ => return None,
    })
}

/// The SQL types that cross the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiType {
    /// `i64`, 8 bytes per row.
    BigInt,
    /// `f64`, 8 bytes per row.
    Double,
    /// A bitmap, LSB first.
    Boolean,
    /// `i32` offsets (rows + 1) into UTF-8 data.
    Varchar,
}

impl AbiType {
    /// The name in a self-description: `BIGINT`, `DOUBLE`, ...
    pub const fn name(self) -> &'static str {
        match self {
            Self::BigInt => "BIGINT",
            Self::Double => "DOUBLE",
            Self::Boolean => "BOOLEAN",
            Self::Varchar => "VARCHAR",
        }
    }

    /// The type a self-description names.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "BIGINT" => Self::BigInt,
            "DOUBLE" => Self::Double,
            "BOOLEAN" => Self::Boolean,
            "VARCHAR" => Self::Varchar,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip() {
        for t in [
            AbiType::BigInt,
            AbiType::Double,
            AbiType::Boolean,
            AbiType::Varchar,
        ] {
            assert_eq!(AbiType::from_name(t.name()), Some(t));
        }
        assert_eq!(AbiType::from_name("INT"), None);
    }

    #[test]
    fn every_error_code_has_a_text() {
        for c in [
            ERR_BAD_INPUT,
            ERR_BAD_UTF8,
            ERR_BAD_HANDLE,
            ERR_BAD_STATE,
            ERR_NO_RETRACT,
        ] {
            assert!(error_text(c).is_some(), "{c}");
        }
        assert_eq!(error_text(-99), None);
    }
}
