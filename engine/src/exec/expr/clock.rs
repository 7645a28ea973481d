//! `PROCTIME()`: the wall clock when a row is processed (Flink's
//! processing-time attribute), as a TIMESTAMP. Each batch reads the clock
//! once, so its rows share one time. Never folded to a constant.

use std::sync::Arc;

use arrow::array::{ArrayRef, TimestampMillisecondArray};

use super::functions::{FunctionDef, arity};
use super::kernel::{KernelCall, RowKernel};
use crate::error::ExecResult;
use crate::plan::expr::{Expr, ScalarFunc};
use crate::types::SqlType;

/// `PROCTIME()`.
pub(crate) static PROCTIME: FunctionDef = FunctionDef {
    name: "proctime",
    names: &["proctime"],
    aliases: &[],
    plan: |name, args, pos| {
        arity(name, &args, 0..=0, pos)?;
        Ok(Expr::Function {
            func: ScalarFunc::ProcTime,
            args,
            ty: SqlType::Timestamp,
        })
    },
    compile: |_, _, _, _| Ok(KernelCall::node(Clock, Vec::new())),
};

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug)]
struct Clock;

impl RowKernel for Clock {
    fn eval(&self, _args: &[ArrayRef]) -> ExecResult<ArrayRef> {
        // no arguments: one value, spread over the batch by the caller
        Ok(Arc::new(TimestampMillisecondArray::from(vec![now_ms()])))
    }
}

/// Whether `e` reads the clock (and so must not be folded).
pub(crate) fn reads_clock(e: &Expr) -> bool {
    match e {
        Expr::Function {
            func: ScalarFunc::ProcTime,
            ..
        } => true,
        other => other.children().into_iter().any(reads_clock),
    }
}
