//! Calling one function of a module on a few typed values, outside any
//! query: the web UI's try-it pane (`POST /api/udfs/{module}/{function}/try`)
//! and the probe that tells whether an aggregate can retract rows.
//!
//! Each call gets a fresh instance, so its time and memory are its own and
//! a trap leaves nothing behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{Float64Type, Int64Type};
use serde_json::Value;

use crate::types::SqlType;
use crate::udf::{UdfError, UdfInstance, UdfKind, UdfModule, UdfSignature};

/// Most rows one try takes.
pub const MAX_TRY_ROWS: usize = 1000;

/// What a try returned.
#[derive(Debug, Clone, PartialEq)]
pub struct TryOutcome {
    /// One value per row (scalar, filter) or one for all rows (aggregate),
    /// as JSON (`null` for NULL).
    pub results: Vec<Value>,
    /// How long the guest call took.
    pub elapsed: Duration,
    /// The instance's linear memory after the call, in bytes.
    pub memory_bytes: usize,
}

fn bad(function: &str, reason: String) -> UdfError {
    UdfError::Input {
        function: function.to_string(),
        reason,
    }
}

/// One argument column of type `ty` from the rows' values at `index`.
fn column(sig: &UdfSignature, index: usize, rows: &[Vec<Value>]) -> Result<ArrayRef, UdfError> {
    let ty = sig.args[index];
    let nullable = sig.nullable.get(index).copied().unwrap_or(false);
    let cell = |r: usize| -> Result<Option<&Value>, UdfError> {
        match &rows[r][index] {
            Value::Null if nullable => Ok(None),
            Value::Null => Err(bad(
                &sig.name,
                format!("row {}: argument {} may not be NULL", r + 1, index + 1),
            )),
            v => Ok(Some(v)),
        }
    };
    let wrong = |r: usize, v: &Value| {
        bad(
            &sig.name,
            format!("row {}: argument {} is {ty}, not {v}", r + 1, index + 1),
        )
    };
    // each cell through `conv`; a value it refuses is an error naming the row
    let cells = |conv: &dyn Fn(&Value) -> Option<Value>| -> Result<Vec<Option<Value>>, UdfError> {
        (0..rows.len())
            .map(|r| match cell(r)? {
                None => Ok(None),
                Some(v) => conv(v).map(Some).ok_or_else(|| wrong(r, v)),
            })
            .collect()
    };
    let text = |v: &Value| v.as_str().map(|s| s.trim().to_string());
    Ok(match ty {
        SqlType::BigInt | SqlType::Int => {
            let parse = |v: &Value| {
                v.as_i64()
                    .or_else(|| text(v)?.parse().ok())
                    .map(Value::from)
            };
            let out = cells(&parse)?;
            Arc::new(Int64Array::from_iter(
                out.iter().map(|v| v.as_ref().and_then(Value::as_i64)),
            ))
        }
        SqlType::Double => {
            let parse = |v: &Value| {
                v.as_f64()
                    .or_else(|| text(v)?.parse().ok())
                    .map(Value::from)
            };
            let out = cells(&parse)?;
            Arc::new(Float64Array::from_iter(
                out.iter().map(|v| v.as_ref().and_then(Value::as_f64)),
            ))
        }
        SqlType::Boolean => {
            let parse = |v: &Value| {
                v.as_bool()
                    .or_else(|| match text(v)?.to_ascii_lowercase().as_str() {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    })
                    .map(Value::from)
            };
            let out = cells(&parse)?;
            Arc::new(BooleanArray::from_iter(
                out.iter().map(|v| v.as_ref().and_then(Value::as_bool)),
            ))
        }
        SqlType::Varchar => {
            let as_text = |v: &Value| {
                Some(Value::from(match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }))
            };
            let out = cells(&as_text)?;
            Arc::new(StringArray::from_iter(
                out.iter().map(|v| v.as_ref().and_then(Value::as_str)),
            ))
        }
        other => {
            return Err(bad(
                &sig.name,
                format!(
                    "argument {} has type {other}, which UDFs do not take",
                    index + 1
                ),
            ));
        }
    })
}

/// A result column as JSON values.
fn values(a: &ArrayRef) -> Vec<Value> {
    (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                return Value::Null;
            }
            if let Some(x) = a.as_primitive_opt::<Int64Type>() {
                x.value(i).into()
            } else if let Some(x) = a.as_primitive_opt::<Float64Type>() {
                serde_json::Number::from_f64(x.value(i)).map_or(Value::Null, Value::Number)
            } else if let Some(x) = a.as_boolean_opt() {
                x.value(i).into()
            } else if let Some(x) = a.as_string_opt::<i32>() {
                x.value(i).into()
            } else {
                Value::Null
            }
        })
        .collect()
}

/// Calls `function` of `module` on `rows` (each a list of argument values):
/// a scalar or filter once over all rows, an aggregate over all rows as one
/// group.
///
/// # Errors
/// [`UdfError::Input`]: no such function, too many rows, or a value that
/// does not fit its argument; [`UdfError::Call`]: the call failed (trap,
/// time or memory limit, bad result).
pub fn try_call(
    module: &UdfModule,
    function: &str,
    rows: &[Vec<Value>],
) -> Result<TryOutcome, UdfError> {
    let sig = module.function(function).ok_or_else(|| {
        let names: Vec<&str> = module.functions.iter().map(|f| f.name.as_str()).collect();
        bad(
            function,
            format!(
                "module {} has no function {function}; it has {}",
                module.name,
                names.join(", ")
            ),
        )
    })?;
    if rows.is_empty() || rows.len() > MAX_TRY_ROWS {
        return Err(bad(
            &sig.name,
            format!(
                "give 1 to {MAX_TRY_ROWS} rows of arguments, not {}",
                rows.len()
            ),
        ));
    }
    if let Some((r, row)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != sig.args.len())
    {
        return Err(bad(
            &sig.name,
            format!(
                "row {} has {} values, but {sig} takes {}",
                r + 1,
                row.len(),
                sig.args.len()
            ),
        ));
    }
    let args = (0..sig.args.len())
        .map(|i| column(sig, i, rows))
        .collect::<Result<Vec<_>, _>>()?;
    let mut instance = UdfInstance::new(module)?;
    let started = Instant::now();
    let result = match sig.kind {
        UdfKind::Scalar | UdfKind::Filter => {
            instance.call(&sig.name, &args, rows.len(), sig.ret)?
        }
        UdfKind::Aggregate => {
            let handle = instance.agg_new(&sig.name)?;
            let groups = vec![0u32; rows.len()];
            instance.agg_update(&sig.name, handle, &args, &groups, 1, false)?;
            let out = instance.agg_finish(&sig.name, handle, &[0], sig.ret)?;
            instance.agg_drop(&sig.name, handle);
            out
        }
    };
    let elapsed = started.elapsed();
    Ok(TryOutcome {
        results: values(&result),
        elapsed,
        memory_bytes: instance.memory_bytes(),
    })
}

/// Whether aggregate `sig` can retract rows (row windows slide it instead
/// of recomputing each frame): adds one row of plain values, retracts it and
/// reads the result. `None` when the probe itself fails.
pub(crate) fn probe_retract(instance: &mut UdfInstance, sig: &UdfSignature) -> Option<bool> {
    if sig.kind != UdfKind::Aggregate {
        return None;
    }
    let row: Vec<Value> = sig
        .args
        .iter()
        .map(|t| match t {
            SqlType::Double => Value::from(1.0),
            SqlType::Boolean => Value::from(true),
            SqlType::Varchar => Value::from("a"),
            _ => Value::from(1),
        })
        .collect();
    let args = (0..sig.args.len())
        .map(|i| column(sig, i, std::slice::from_ref(&row)))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let handle = instance.agg_new(&sig.name).ok()?;
    let slid = instance.agg_slide(
        &sig.name,
        handle,
        &args,
        &[0, 0, 0, 1, 0, 0, 2, 0, 0],
        sig.ret,
    );
    instance.agg_drop(&sig.name, handle);
    slid.ok().map(|r| r.is_some())
}
