//! Calls of functions whose kernel is a loop over rows: the string
//! functions of `text.rs`, the regular expressions of `regex.rs`,
//! `DATE_FORMAT`, the elementary functions and GREATEST / LEAST. A kernel
//! is built once per query (a constant pattern is parsed then) and runs
//! once per batch over its argument columns; when every argument is a
//! constant it runs on the one-row arrays and the result stays a constant.

use std::fmt::Debug;

use arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;

use super::Node;
use super::value::{Value, internal, map_values, prim, strings};
use crate::error::ExecResult;
use crate::plan::expr::{Expr, Literal};

/// A function over argument columns of equal length.
pub(crate) trait RowKernel: Debug + Send + Sync {
    /// The result column, one value per row of `args`.
    ///
    /// # Errors
    /// An argument of another type than the kernel was built for.
    fn eval(&self, args: &[ArrayRef]) -> ExecResult<ArrayRef>;
}

/// A compiled call of a [`RowKernel`].
#[derive(Debug)]
pub(crate) struct KernelCall {
    kernel: Box<dyn RowKernel>,
    args: Vec<Node>,
}

impl KernelCall {
    /// The node calling `kernel` on `args`.
    pub(crate) fn node(kernel: impl RowKernel + 'static, args: Vec<Node>) -> Node {
        Node::Kernel(Box::new(KernelCall {
            kernel: Box::new(kernel),
            args,
        }))
    }

    /// Evaluates over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let values = self
            .args
            .iter()
            .map(|a| a.eval(batch))
            .collect::<ExecResult<Vec<_>>>()?;
        map_values(values, batch.num_rows(), |a| self.kernel.eval(a))
    }
}

/// Argument `i` as strings.
pub(crate) fn str_arg(args: &[ArrayRef], i: usize) -> ExecResult<&StringArray> {
    strings(
        args.get(i)
            .ok_or_else(|| internal(format!("missing argument {}", i + 1)))?,
    )
}

/// Argument `i` as BIGINTs.
pub(crate) fn int_arg(args: &[ArrayRef], i: usize) -> ExecResult<&Int64Array> {
    prim::<Int64Type>(
        args.get(i)
            .ok_or_else(|| internal(format!("missing argument {}", i + 1)))?,
    )
}

/// The value of a VARCHAR literal argument (`None`: not a constant string).
pub(crate) fn const_str(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(Literal::Varchar(s)) => Some(s),
        Expr::Cast { expr, .. } => const_str(expr),
        _ => None,
    }
}

/// Whether row `i` of any of `cols` is NULL.
pub(crate) fn any_null(cols: &[&dyn Array], i: usize) -> bool {
    cols.iter().any(|c| c.is_null(i))
}

/// A pattern read from a column, parsed once per run of equal values.
pub(crate) struct Reparsed<T> {
    last: Option<(String, Option<T>)>,
    parse: fn(&str) -> Option<T>,
}

impl<T> Reparsed<T> {
    pub(crate) fn new(parse: fn(&str) -> Option<T>) -> Self {
        Self { last: None, parse }
    }

    /// `text` parsed (`None` when it does not parse).
    pub(crate) fn get(&mut self, text: &str) -> Option<&T> {
        if self.last.as_ref().is_none_or(|(t, _)| t != text) {
            self.last = Some((text.to_string(), (self.parse)(text)));
        }
        self.last.as_ref().and_then(|(_, x)| x.as_ref())
    }
}
