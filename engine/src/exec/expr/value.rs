//! Intermediate results of evaluation (a column of batch length or a one-row
//! constant) and checked downcasts of Arrow arrays.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Datum, Float64Array, Int32Array, Int64Array,
    PrimitiveArray, Scalar, StringArray, TimestampMillisecondArray, new_null_array,
};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float64Type, Int32Type, Int64Type, TimeUnit,
    TimestampMillisecondType,
};
use arrow::error::ArrowError;

use crate::error::{ExecError, ExecResult};

/// The result of evaluating a node.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// One value per row of the batch.
    Array(ArrayRef),
    /// The same value for every row (a one-row array).
    Scalar(Scalar<ArrayRef>),
}

impl Value {
    /// Wraps a one-row array as a constant.
    pub(crate) fn constant(a: ArrayRef) -> ExecResult<Self> {
        if a.len() == 1 {
            Ok(Value::Scalar(Scalar::new(a)))
        } else {
            Err(internal(format!(
                "a constant must have one row, this one has {}",
                a.len()
            )))
        }
    }

    /// A NULL constant of type `t`.
    pub(crate) fn null(t: &DataType) -> Self {
        Value::Scalar(Scalar::new(new_null_array(t, 1)))
    }

    /// A kernel's result: a constant when every input was one.
    pub(crate) fn from_kernel(a: ArrayRef, all_scalar: bool) -> ExecResult<Self> {
        if all_scalar {
            Self::constant(a)
        } else {
            Ok(Value::Array(a))
        }
    }

    /// Whether this is a one-row constant.
    pub(crate) fn is_scalar(&self) -> bool {
        matches!(self, Value::Scalar(_))
    }

    /// The underlying array (one row for a constant).
    pub(crate) fn array(&self) -> &dyn Array {
        match self {
            Value::Array(a) => a.as_ref(),
            Value::Scalar(s) => s.get().0,
        }
    }

    /// The underlying array, shared (one row for a constant).
    pub(crate) fn array_ref(&self) -> ArrayRef {
        match self {
            Value::Array(a) => a.clone(),
            Value::Scalar(s) => s.clone().into_inner(),
        }
    }

    /// As an Arrow kernel operand.
    pub(crate) fn datum(&self) -> &dyn Datum {
        match self {
            Value::Array(a) => a,
            Value::Scalar(s) => s,
        }
    }

    /// The Arrow type.
    pub(crate) fn data_type(&self) -> &DataType {
        self.array().data_type()
    }

    /// Whether this is a NULL constant.
    pub(crate) fn is_null_scalar(&self) -> bool {
        match self {
            Value::Scalar(s) => is_null_at(s.get().0, 0),
            Value::Array(_) => false,
        }
    }

    /// Materialises as a column of `rows` rows.
    pub(crate) fn into_array(self, rows: usize) -> ExecResult<ArrayRef> {
        match self {
            Value::Array(a) => Ok(a),
            Value::Scalar(s) => repeat(s.get().0, rows),
        }
    }
}

/// Whether slot `i` is NULL, counting every slot of a `Null`-typed array.
pub(crate) fn is_null_at(a: &dyn Array, i: usize) -> bool {
    a.data_type() == &DataType::Null || a.is_null(i)
}

/// Applies an element-wise operation to a value, keeping it a constant when
/// it is one.
pub(crate) fn map_value(
    v: Value,
    f: impl FnOnce(&ArrayRef) -> ExecResult<ArrayRef>,
) -> ExecResult<Value> {
    let scalar = v.is_scalar();
    Value::from_kernel(f(&v.array_ref())?, scalar)
}

/// Applies an element-wise operation to several values: on the one-row
/// arrays when all are constants, else on columns of `rows` rows.
pub(crate) fn map_values(
    values: Vec<Value>,
    rows: usize,
    f: impl FnOnce(&[ArrayRef]) -> ExecResult<ArrayRef>,
) -> ExecResult<Value> {
    let all_scalar = values.iter().all(Value::is_scalar);
    let arrays = values
        .into_iter()
        .map(|v| {
            if all_scalar {
                Ok(v.array_ref())
            } else {
                v.into_array(rows)
            }
        })
        .collect::<ExecResult<Vec<_>>>()?;
    Value::from_kernel(f(&arrays)?, all_scalar)
}

/// Repeats the single value of `one` `rows` times.
pub(crate) fn repeat(one: &dyn Array, rows: usize) -> ExecResult<ArrayRef> {
    if is_null_at(one, 0) {
        return Ok(new_null_array(one.data_type(), rows));
    }
    Ok(match one.data_type() {
        DataType::Boolean => {
            let bits = if booleans(one)?.value(0) {
                BooleanBuffer::new_set(rows)
            } else {
                BooleanBuffer::new_unset(rows)
            };
            Arc::new(BooleanArray::new(bits, None))
        }
        DataType::Int32 => Arc::new(Int32Array::from_value(
            prim::<Int32Type>(one)?.value(0),
            rows,
        )),
        DataType::Int64 => Arc::new(Int64Array::from_value(
            prim::<Int64Type>(one)?.value(0),
            rows,
        )),
        DataType::Float64 => Arc::new(Float64Array::from_value(
            prim::<Float64Type>(one)?.value(0),
            rows,
        )),
        DataType::Timestamp(TimeUnit::Millisecond, None) => Arc::new(
            TimestampMillisecondArray::from_value(timestamps(one)?.value(0), rows),
        ),
        DataType::Utf8 => Arc::new(StringArray::new_repeated(strings(one)?.value(0), rows)),
        DataType::Decimal128(..) => Arc::new(
            arrow::array::Decimal128Array::from_value(
                crate::types::decimal::decimals(one)?.value(0),
                rows,
            )
            .with_data_type(one.data_type().clone()),
        ),
        other => {
            return Err(internal(format!(
                "cannot repeat a constant of type {other}"
            )));
        }
    })
}

/// An `ExecError::Internal` with `msg`.
pub(crate) fn internal(msg: impl Into<String>) -> ExecError {
    ExecError::Internal(msg.into())
}

/// Wraps an Arrow error with what was being evaluated.
pub(crate) fn arrow_err(context: &'static str) -> impl FnOnce(ArrowError) -> ExecError {
    move |e| ExecError::arrow(context, e)
}

fn mismatch(expected: &str, got: &DataType) -> ExecError {
    internal(format!("expected a {expected} array, got {got}"))
}

/// Downcasts to a primitive array of type `T`.
pub(crate) fn prim<T: ArrowPrimitiveType>(a: &dyn Array) -> ExecResult<&PrimitiveArray<T>> {
    match a.as_primitive_opt::<T>() {
        Some(p) if p.data_type() == &T::DATA_TYPE => Ok(p),
        _ => Err(mismatch(&T::DATA_TYPE.to_string(), a.data_type())),
    }
}

/// Downcasts to a TIMESTAMP (milliseconds) array.
pub(crate) fn timestamps(a: &dyn Array) -> ExecResult<&TimestampMillisecondArray> {
    prim::<TimestampMillisecondType>(a)
}

/// Downcasts to a UTF-8 array.
pub(crate) fn strings(a: &dyn Array) -> ExecResult<&StringArray> {
    a.as_string_opt::<i32>()
        .ok_or_else(|| mismatch("Utf8", a.data_type()))
}

/// Downcasts to a BOOLEAN array.
pub(crate) fn booleans(a: &dyn Array) -> ExecResult<&BooleanArray> {
    a.as_boolean_opt()
        .ok_or_else(|| mismatch("Boolean", a.data_type()))
}

/// TIMESTAMP columns as their epoch milliseconds (zero-copy); other arrays
/// unchanged.
pub(crate) fn timestamps_as_i64(a: ArrayRef) -> ExecResult<ArrayRef> {
    if matches!(a.data_type(), DataType::Timestamp(..)) {
        Ok(Arc::new(timestamps(&a)?.reinterpret_cast::<Int64Type>()))
    } else {
        Ok(a)
    }
}

/// Gives an array the Arrow type `to`: unchanged when it has it already,
/// reinterpreted between Int64 and TIMESTAMP (zero-copy), else an error.
pub(crate) fn retype(a: ArrayRef, to: &DataType) -> ExecResult<ArrayRef> {
    match (a.data_type(), to) {
        (from, to) if from == to => Ok(a),
        (DataType::Int64, DataType::Timestamp(TimeUnit::Millisecond, None)) => Ok(Arc::new(
            prim::<Int64Type>(&a)?.reinterpret_cast::<TimestampMillisecondType>(),
        )),
        (DataType::Timestamp(TimeUnit::Millisecond, None), DataType::Int64) => {
            Ok(Arc::new(timestamps(&a)?.reinterpret_cast::<Int64Type>()))
        }
        (from, to) => Err(internal(format!("cannot use a {from} result as {to}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_expands_every_type() {
        let ones: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(vec![true])),
            Arc::new(Int32Array::from(vec![7])),
            Arc::new(Int64Array::from(vec![7])),
            Arc::new(Float64Array::from(vec![0.5])),
            Arc::new(TimestampMillisecondArray::from(vec![-5])),
            Arc::new(StringArray::from(vec!["é"])),
            new_null_array(&DataType::Int32, 1),
            new_null_array(&DataType::Null, 1),
        ];
        for one in ones {
            let r = repeat(&one, 3).unwrap();
            assert_eq!(r.len(), 3);
            assert_eq!(r.data_type(), one.data_type());
            assert_eq!(r.slice(2, 1).as_ref(), one.as_ref() as &dyn Array);
        }
        let empty = repeat(&Int32Array::from(vec![1]), 0).unwrap();
        assert_eq!(empty.len(), 0);
    }

    #[test]
    fn retype_reinterprets_timestamps() {
        let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![Some(1), None]));
        let i = retype(ts.clone(), &DataType::Int64).unwrap();
        assert_eq!(
            i.as_ref(),
            &Int64Array::from(vec![Some(1), None]) as &dyn Array
        );
        let back = retype(i, &ts.data_type().clone()).unwrap();
        assert_eq!(&back, &ts);
        assert!(retype(ts, &DataType::Utf8).is_err());
    }

    #[test]
    fn downcasts_check_the_type() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        assert!(prim::<Int64Type>(&a).is_err());
        assert!(strings(&a).is_err());
        assert!(booleans(&a).is_err());
        assert!(timestamps(&a).is_err());
        assert!(prim::<Int32Type>(&a).is_ok());
    }
}
