//! placeholder: column-wise evaluation of `plan::expr::Expr` (being written).
use arrow::array::{ArrayRef, BooleanArray};
use arrow::record_batch::RecordBatch;

use crate::error::ExecResult;
use crate::plan::expr::Expr;

/// An expression prepared for evaluation.
#[derive(Debug)]
pub struct CompiledExpr;

/// Prepares `expr` for evaluation.
///
/// # Errors
/// Never yet.
pub fn compile(_expr: &Expr) -> ExecResult<CompiledExpr> {
    unimplemented!()
}

impl CompiledExpr {
    /// Evaluates over every row of `batch`.
    ///
    /// # Errors
    /// Arrow failures.
    pub fn evaluate(&self, _batch: &RecordBatch) -> ExecResult<ArrayRef> {
        unimplemented!()
    }

    /// Evaluates a BOOLEAN expression as a filter mask (NULL → false).
    ///
    /// # Errors
    /// Arrow failures.
    pub fn evaluate_predicate(&self, _batch: &RecordBatch) -> ExecResult<BooleanArray> {
        unimplemented!()
    }
}
