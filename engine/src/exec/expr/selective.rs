//! A subexpression evaluated only on the rows that need it: a CASE branch
//! on the rows that take it, the right side of AND / OR on the rows the
//! left side leaves undecided. Nexmark q21's `REGEXP_EXTRACT` in an ELSE
//! that one row in ten reaches is the case in point.
//!
//! The batch is cut down to those rows — the columns the expression reads
//! are filtered, the others are zero-copy slices of the right length whose
//! values nobody reads — and the result is spread back over the batch, NULL
//! on the other rows. When most rows need it, it runs on the whole batch.

use arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array};
use arrow::compute::{filter, take};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::Node;
use super::compile::sub;
use super::value::{Value, arrow_err};
use crate::error::ExecResult;
use crate::plan::expr::Expr;
use crate::types::SqlType;

/// Below this share of the rows (in quarters), the batch is cut down.
const CUT_BELOW_QUARTERS: usize = 3;

/// A compiled subexpression and the input columns it reads.
#[derive(Debug)]
pub(crate) struct Selective {
    node: Node,
    used: Vec<usize>,
}

impl Selective {
    /// Compiles `expr` as `ty`.
    pub(crate) fn compile(expr: &Expr, ty: SqlType) -> ExecResult<Self> {
        let mut used = Vec::new();
        expr.columns(&mut used);
        Ok(Self {
            node: sub(expr, ty)?,
            used,
        })
    }

    /// Over every row.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        self.node.eval(batch)
    }

    /// Over the rows where `rows` (without NULLs) is true; the value on the
    /// other rows is unspecified (NULL, or what the expression gives there).
    pub(crate) fn eval_where(&self, batch: &RecordBatch, rows: &BooleanArray) -> ExecResult<Value> {
        let n = batch.num_rows();
        let picked = rows.true_count();
        if picked * 4 >= n * CUT_BELOW_QUARTERS {
            return self.node.eval(batch);
        }
        let columns = batch
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if self.used.contains(&i) {
                    filter(c.as_ref(), rows).map_err(arrow_err("selective evaluation"))
                } else {
                    Ok(c.slice(0, picked))
                }
            })
            .collect::<ExecResult<Vec<ArrayRef>>>()?;
        let cut = RecordBatch::try_new_with_options(
            batch.schema(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(picked)),
        )
        .map_err(arrow_err("selective evaluation"))?;
        let small = match self.node.eval(&cut)? {
            v @ Value::Scalar(_) => return Ok(v),
            Value::Array(a) => a,
        };
        // row i of the batch takes row k of `small` when it is the k-th picked
        let mut k = 0u32;
        let spread: UInt32Array = (0..n)
            .map(|i| {
                (rows.value(i)).then(|| {
                    k += 1;
                    k - 1
                })
            })
            .collect();
        let full =
            take(small.as_ref(), &spread, None).map_err(arrow_err("selective evaluation"))?;
        Ok(Value::Array(full))
    }
}
