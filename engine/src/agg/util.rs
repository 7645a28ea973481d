//! Helpers shared by the accumulators: casting arguments to the type an
//! accumulator works in, and per-row iteration over valid values.

use std::borrow::Cow;

use arrow::array::{Array, ArrayRef, ArrowPrimitiveType, AsArray, PrimitiveArray};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use crate::error::{ExecError, ExecResult};

/// The first argument cast to `T`'s type (no copy when it already is).
pub(crate) fn primitive_arg<T: ArrowPrimitiveType>(
    values: &[ArrayRef],
    what: &str,
) -> ExecResult<PrimitiveArray<T>> {
    let v = values
        .first()
        .ok_or_else(|| ExecError::Internal(format!("{what} needs an argument")))?;
    let v: Cow<'_, ArrayRef> = if v.data_type() == &T::DATA_TYPE {
        Cow::Borrowed(v)
    } else {
        Cow::Owned(cast(v, &T::DATA_TYPE).map_err(|e| ExecError::arrow(what, e))?)
    };
    v.as_primitive_opt::<T>().cloned().ok_or_else(|| {
        ExecError::Internal(format!(
            "{what}: argument is {}, not {}",
            v.data_type(),
            T::DATA_TYPE
        ))
    })
}

/// Calls `f(group, value)` for every non-NULL row: a tight loop when the
/// column has no NULLs, a bitmap-guided one otherwise.
#[inline]
pub(crate) fn for_each_valid<T: ArrowPrimitiveType>(
    values: &PrimitiveArray<T>,
    group_indices: &[u32],
    mut f: impl FnMut(usize, T::Native),
) {
    let data = values.values();
    match values.nulls().filter(|n| n.null_count() > 0) {
        None => {
            for (&g, &v) in group_indices.iter().zip(data.iter()) {
                f(g as usize, v);
            }
        }
        Some(nulls) => {
            for ((&g, &v), valid) in group_indices.iter().zip(data.iter()).zip(nulls.iter()) {
                if valid {
                    f(g as usize, v);
                }
            }
        }
    }
}

/// A validity buffer from per-group "has a value" flags (`None` when all are set).
pub(crate) fn validity(seen: &[bool]) -> Option<NullBuffer> {
    if seen.iter().all(|&s| s) {
        None
    } else {
        Some(NullBuffer::new(BooleanBuffer::from(seen)))
    }
}

/// Whether an argument type is a bare NULL literal (nothing to aggregate).
pub(crate) fn is_null_type(values: &[ArrayRef]) -> bool {
    values
        .first()
        .is_some_and(|v| v.data_type() == &DataType::Null)
}
