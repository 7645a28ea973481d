//! Column-wise evaluation of typed expressions ([`crate::plan::expr::Expr`])
//! over Arrow record batches.
//!
//! [`compile`] turns an `Expr` into a tree of evaluation nodes once per query:
//! literals become one-row Arrow arrays used as [`arrow::array::Datum`]
//! scalars, constant sub-expressions are folded, LIKE patterns are parsed and
//! `IN` lists of constants become hash sets. [`CompiledExpr::evaluate`] then
//! runs Arrow kernels (or typed loops for string and calendar functions) per
//! batch, never dispatching per row.
//!
//! Semantics follow what Flink / PostgreSQL users expect; the choices where
//! SQL leaves room are documented on the module that implements them:
//! arithmetic (`arithmetic`), comparisons (`compare`), boolean logic and `IN`
//! (`logic`), LIKE (`like`), string functions (`strings`), time functions
//! (`time`), CAST (`cast`), CASE and COALESCE (`case`).

mod arithmetic;
mod calendar;
mod case;
mod cast;
pub(crate) use cast::parse_timestamp_ms;
mod choose;
pub(crate) mod clock;
mod compare;
mod compile;
mod date_format;
mod decimal;
mod elementary;
pub(crate) mod functions;
mod kernel;
mod like;
mod logic;
mod math;
mod regex;
mod selective;
mod strings;
#[cfg(test)]
mod test_util;
mod text;
mod time;
mod udf_call;
mod value;

use arrow::array::{Array, ArrayRef, BooleanArray};
use arrow::compute::prep_null_mask_filter;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use crate::error::ExecResult;
use crate::plan::expr::Expr;
use crate::types::SqlType;

use value::{Value, booleans, internal};

/// An expression prepared for evaluation: compile once per query, evaluate
/// once per batch. Cheap to share between threads.
#[derive(Debug)]
pub struct CompiledExpr {
    root: Node,
    sql_type: SqlType,
    data_type: DataType,
}

/// Prepares `expr` for evaluation: checks operand types, folds constant
/// sub-expressions and precomputes literals, LIKE patterns and `IN` sets.
///
/// # Errors
/// [`crate::ExecError::Internal`] when the expression is not well typed (an
/// operator applied to types it does not support, a function called with the
/// wrong number of arguments, an unsupported CAST or DATE_TRUNC unit, a
/// tumbling window size that is not positive). The planner should have
/// rejected these; the message names the offending expression.
pub fn compile(expr: &Expr) -> ExecResult<CompiledExpr> {
    let sql_type = expr.sql_type();
    Ok(CompiledExpr {
        root: compile::compile_node(expr)?,
        sql_type,
        data_type: sql_type.to_arrow(),
    })
}

impl CompiledExpr {
    /// Evaluates over every row of `batch`, returning an array of
    /// `batch.num_rows()` rows of the expression's type.
    ///
    /// # Errors
    /// [`crate::ExecError::Internal`] when a column the expression reads is
    /// missing from `batch` or has another type than the plan said;
    /// [`crate::ExecError::Arrow`] when an Arrow kernel fails. Bad data never
    /// fails: division by zero and failed casts yield NULL.
    pub fn evaluate(&self, batch: &RecordBatch) -> ExecResult<ArrayRef> {
        let mut out = self.root.eval(batch)?.into_array(batch.num_rows())?;
        if self.sql_type == SqlType::Timestamp {
            // a computed timestamp past the supported range is NULL, not wrapped
            out = crate::types::timestamps_in_range(out);
        }
        if out.data_type() != &self.data_type || out.len() != batch.num_rows() {
            return Err(internal(format!(
                "expression produced {} rows of {}, expected {} rows of {}",
                out.len(),
                out.data_type(),
                batch.num_rows(),
                self.data_type
            )));
        }
        Ok(out)
    }

    /// Evaluates a BOOLEAN expression as a filter mask for WHERE / HAVING:
    /// NULL counts as false, so the result has no nulls. A bare `NULL`
    /// predicate selects nothing.
    ///
    /// # Errors
    /// As [`CompiledExpr::evaluate`], and [`crate::ExecError::Internal`]
    /// when the expression is not BOOLEAN.
    pub fn evaluate_predicate(&self, batch: &RecordBatch) -> ExecResult<BooleanArray> {
        let rows = batch.num_rows();
        match self.sql_type {
            SqlType::Boolean => {}
            SqlType::Null => return Ok(BooleanArray::from(vec![false; rows])),
            other => {
                return Err(internal(format!(
                    "a predicate must be BOOLEAN, this one is {other}"
                )));
            }
        }
        let out = self.root.eval(batch)?.into_array(rows)?;
        let mask = booleans(&out)?;
        if mask.len() != rows {
            return Err(internal(format!(
                "predicate produced {} rows for a batch of {rows}",
                mask.len()
            )));
        }
        Ok(if mask.null_count() > 0 {
            prep_null_mask_filter(mask)
        } else {
            mask.clone()
        })
    }
}

/// A compiled evaluation node. Each variant's `eval` produces either a
/// column of `batch.num_rows()` rows or a one-row constant.
#[derive(Debug)]
pub(crate) enum Node {
    /// Column `index` of the batch, which must have type `data_type`.
    Column {
        index: usize,
        name: String,
        data_type: DataType,
    },
    /// A constant (a literal or a folded sub-expression).
    Const(Value),
    /// `+ - * / %`.
    Arith(Box<arithmetic::Arith>),
    /// `+ - * / %` of DECIMALs.
    Decimal(Box<decimal::DecimalArith>),
    /// Unary minus.
    Negate(Box<Node>),
    /// ABS, FLOOR, CEIL, ROUND.
    Math(Box<math::MathCall>),
    /// `= <> < <= > >=`.
    Compare(Box<compare::Compare>),
    /// `BETWEEN`.
    Between(Box<compare::Between>),
    /// AND / OR (Kleene).
    Logic(Box<logic::Kleene>),
    /// NOT.
    Not(Box<Node>),
    /// IS [NOT] NULL (`true` = IS NOT NULL).
    IsNull(Box<Node>, bool),
    /// `[NOT] IN (list)`.
    InList(Box<logic::InList>),
    /// `[NOT] LIKE` / `ILIKE`.
    Like(Box<like::Like>),
    /// String functions and `||`.
    Str(Box<strings::StrCall>),
    /// EXTRACT, DATE_TRUNC, tumbling windows.
    Time(Box<time::TimeCall>),
    /// CAST.
    Cast(Box<cast::Cast>),
    /// CASE WHEN.
    Case(Box<case::Case>),
    /// COALESCE.
    Coalesce(Vec<Node>),
    /// A WebAssembly UDF.
    Udf(Box<udf_call::UdfCall>),
    /// A function computed by a loop over rows (`kernel.rs`).
    Kernel(Box<kernel::KernelCall>),
}

impl Node {
    /// Evaluates the node over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        match self {
            Node::Column {
                index,
                name,
                data_type,
            } => {
                let col = batch.columns().get(*index).ok_or_else(|| {
                    internal(format!(
                        "column {name} (#{index}) is missing from a batch of {} columns",
                        batch.num_columns()
                    ))
                })?;
                if col.data_type() != data_type {
                    return Err(internal(format!(
                        "column {name} (#{index}) is {}, the plan expects {data_type}",
                        col.data_type()
                    )));
                }
                Ok(Value::Array(col.clone()))
            }
            Node::Const(v) => Ok(v.clone()),
            Node::Arith(a) => a.eval(batch),
            Node::Decimal(a) => a.eval(batch),
            Node::Negate(e) => arithmetic::negate(e.eval(batch)?),
            Node::Math(m) => m.eval(batch),
            Node::Compare(c) => c.eval(batch),
            Node::Between(b) => b.eval(batch),
            Node::Logic(k) => k.eval(batch),
            Node::Not(e) => logic::not(e.eval(batch)?),
            Node::IsNull(e, negated) => logic::is_null(e.eval(batch)?, *negated),
            Node::InList(l) => l.eval(batch),
            Node::Like(l) => l.eval(batch),
            Node::Str(s) => s.eval(batch),
            Node::Time(t) => t.eval(batch),
            Node::Cast(c) => c.eval(batch),
            Node::Case(c) => c.eval(batch),
            Node::Coalesce(args) => case::coalesce(args, batch),
            Node::Udf(u) => u.eval(batch),
            Node::Kernel(k) => k.eval(batch),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, Int64Array, StringArray};
    use arrow::record_batch::RecordBatch;

    use super::test_util::*;
    use super::*;
    use crate::plan::expr::{BinaryOp, Literal};

    #[test]
    fn compiled_expr_is_send_sync_debug() {
        fn check<T: Send + Sync + std::fmt::Debug>() {}
        check::<CompiledExpr>();
    }

    #[test]
    fn predicate_treats_null_as_false() {
        let b = batch(vec![(
            "x",
            Arc::new(Int64Array::from(vec![Some(50), None, Some(150)])) as ArrayRef,
        )]);
        let e = bin(
            BinaryOp::Gt,
            col(0, SqlType::BigInt),
            Expr::Literal(Literal::BigInt(100)),
        );
        let c = compile(&e).unwrap();
        let mask = c.evaluate_predicate(&b).unwrap();
        assert_eq!(mask, BooleanArray::from(vec![false, false, true]));
        assert_eq!(mask.null_count(), 0);
        // evaluate keeps the NULL
        let v = c.evaluate(&b).unwrap();
        assert_eq!(
            booleans(&v).unwrap(),
            &BooleanArray::from(vec![Some(false), None, Some(true)])
        );
    }

    #[test]
    fn constant_predicates_expand_to_the_batch() {
        let b = batch(vec![("x", int32(&[Some(1), Some(2)]))]);
        let t = compile(&Expr::Literal(Literal::Boolean(true))).unwrap();
        assert_eq!(
            t.evaluate_predicate(&b).unwrap(),
            BooleanArray::from(vec![true, true])
        );
        let n = compile(&Expr::Literal(Literal::Null(SqlType::Boolean))).unwrap();
        assert_eq!(
            n.evaluate_predicate(&b).unwrap(),
            BooleanArray::from(vec![false, false])
        );
        let bare = compile(&Expr::Literal(Literal::Null(SqlType::Null))).unwrap();
        assert_eq!(
            bare.evaluate_predicate(&b).unwrap(),
            BooleanArray::from(vec![false, false])
        );
        assert_eq!(bare.evaluate(&b).unwrap().data_type(), &DataType::Null);
    }

    #[test]
    fn non_boolean_predicate_is_an_error() {
        let b = batch(vec![("x", int32(&[Some(1)]))]);
        let c = compile(&col(0, SqlType::Int)).unwrap();
        assert!(c.evaluate_predicate(&b).is_err());
    }

    #[test]
    fn literal_null_is_an_all_null_array_of_its_type() {
        let b = batch(vec![("x", int32(&[Some(1), Some(2), None]))]);
        for t in [
            SqlType::Boolean,
            SqlType::Int,
            SqlType::BigInt,
            SqlType::Double,
            SqlType::Varchar,
            SqlType::Timestamp,
            SqlType::Interval,
        ] {
            let out = eval(&Expr::Literal(Literal::Null(t)), &b);
            assert_eq!(out.data_type(), &t.to_arrow());
            assert_eq!(out.len(), 3);
            assert_eq!(out.null_count(), 3);
        }
    }

    #[test]
    fn empty_batch_gives_empty_arrays() {
        let b = batch(vec![("x", int32(&[]))]);
        let e = bin(
            BinaryOp::Plus,
            col(0, SqlType::Int),
            Expr::Literal(Literal::Int(1)),
        );
        let out = eval(&e, &b);
        assert_eq!(out.len(), 0);
        assert_eq!(out.data_type(), &DataType::Int32);
        let lit = eval(&Expr::Literal(Literal::Varchar("a".into())), &b);
        assert_eq!(lit.len(), 0);
        let c = compile(&bin(
            BinaryOp::Eq,
            col(0, SqlType::Int),
            Expr::Literal(Literal::Int(1)),
        ))
        .unwrap();
        assert_eq!(c.evaluate_predicate(&b).unwrap().len(), 0);
    }

    #[test]
    fn constants_are_folded_at_compile_time() {
        let e = bin(
            BinaryOp::Plus,
            Expr::Literal(Literal::Int(2)),
            Expr::Literal(Literal::Int(3)),
        );
        let c = compile(&e).unwrap();
        assert!(matches!(c.root, Node::Const(_)), "{:?}", c.root);
        let b = batch(vec![("x", int32(&[None, None]))]);
        assert_eq!(
            c.evaluate(&b).unwrap().as_ref(),
            &Int32Array::from(vec![5, 5]) as &dyn Array
        );
    }

    /// One expression of every node kind over columns c0 INT, c1 BIGINT,
    /// c2 DOUBLE, c3 VARCHAR, c4 BOOLEAN, c5 TIMESTAMP.
    fn every_kind() -> Vec<Expr> {
        use crate::plan::expr::{ScalarFunc as F, TimeUnitField as U};
        use SqlType::*;
        let (i, l, d, s, p, t) = (
            || col(0, Int),
            || col(1, BigInt),
            || col(2, Double),
            || col(3, Varchar),
            || col(4, Boolean),
            || col(5, Timestamp),
        );
        let iv = || Expr::Literal(Literal::Interval(1000));
        let like = |pattern| Expr::Like {
            expr: Box::new(s()),
            pattern: Box::new(pattern),
            negated: false,
            case_insensitive: true,
        };
        let in_list = |n: i64| Expr::InList {
            expr: Box::new(l()),
            list: (0..n).map(big).collect(),
            negated: true,
        };
        vec![
            i(),
            l(),
            d(),
            s(),
            p(),
            t(),
            null(Timestamp),
            bin(BinaryOp::Plus, i(), int(1)),
            bin(BinaryOp::Divide, d(), d()),
            bin(BinaryOp::Modulo, l(), l()),
            bin(BinaryOp::Plus, t(), iv()),
            bin(BinaryOp::Minus, t(), t()),
            Expr::Negate(Box::new(l())),
            call(F::Abs, vec![i()], Int),
            call(F::Ceil, vec![d()], Double),
            call(F::Round, vec![d(), l()], Double),
            bin(BinaryOp::Lt, d(), dbl(1.0)),
            bin(BinaryOp::Eq, s(), text("x")),
            Expr::Between {
                expr: Box::new(t()),
                low: Box::new(t()),
                high: Box::new(Expr::Literal(Literal::Timestamp(5))),
                negated: false,
            },
            bin(BinaryOp::And, p(), bin(BinaryOp::Or, p(), null(Boolean))),
            Expr::Not(Box::new(p())),
            Expr::IsNull {
                expr: Box::new(s()),
                negated: true,
            },
            in_list(2),
            in_list(10),
            like(text("a%")),
            like(s()),
            call(F::Lower, vec![s()], Varchar),
            call(F::Length, vec![s()], BigInt),
            call(F::Substring, vec![s(), l(), l()], Varchar),
            call(F::Concat, vec![s(), s()], Varchar),
            bin(BinaryOp::Concat, s(), text("!")),
            call(F::Extract(U::Year), vec![t()], BigInt),
            call(F::DateTrunc(U::Month), vec![t()], Timestamp),
            call(F::TumbleEnd(60_000), vec![t()], Timestamp),
            Expr::Cast {
                expr: Box::new(s()),
                ty: Timestamp,
            },
            Expr::Cast {
                expr: Box::new(d()),
                ty: Varchar,
            },
            Expr::Case {
                whens: vec![(p(), s())],
                else_expr: None,
                ty: Varchar,
            },
            call(F::Coalesce, vec![i(), int(0)], Int),
            call(F::Coalesce, vec![null(SqlType::Null)], SqlType::Null),
        ]
    }

    fn typed_batch(rows: usize) -> RecordBatch {
        fn some<T>(rows: usize, v: T) -> Vec<Option<T>> {
            if rows == 0 {
                vec![]
            } else {
                vec![Some(v), None]
            }
        }
        batch(vec![
            ("c0", int32(&some(rows, 3))),
            ("c1", int64(&some(rows, 2))),
            ("c2", f64s(&some(rows, 0.5))),
            ("c3", strs(&some(rows, "abc"))),
            ("c4", bools(&some(rows, true))),
            ("c5", tss(&some(rows, -1))),
        ])
    }

    #[test]
    fn every_kind_keeps_its_type_on_empty_and_small_batches() {
        for rows in [0, 2] {
            let b = typed_batch(rows);
            for e in every_kind() {
                // checks the length and the exact Arrow type
                eval(&e, &b);
            }
        }
    }

    /// Filter throughput: `cargo test -p eddy --release filter_rate --
    /// --ignored --nocapture`.
    #[test]
    #[ignore]
    fn filter_rate() {
        const ROWS: usize = 8192;
        const ITERATIONS: u32 = 20_000;
        let prices: Vec<Option<i64>> = (0..ROWS as i64).map(|i| Some(i * 7919 % 1000)).collect();
        let channels = ["Google", "Facebook", "Baidu", "Apple"];
        let chans: Vec<Option<&str>> = (0..ROWS).map(|i| Some(channels[i * 31 % 4])).collect();
        let b = batch(vec![("price", int64(&prices)), ("channel", strs(&chans))]);
        let price_gt = || bin(BinaryOp::Gt, col(0, SqlType::BigInt), big(100));
        let google = bin(BinaryOp::Eq, col(1, SqlType::Varchar), text("Google"));
        for (name, e) in [
            ("price > 100", price_gt()),
            (
                "price > 100 AND channel = 'Google'",
                bin(BinaryOp::And, price_gt(), google),
            ),
        ] {
            let c = compile(&e).unwrap();
            let start = std::time::Instant::now();
            let mut selected = 0;
            for _ in 0..ITERATIONS {
                selected += c.evaluate_predicate(&b).unwrap().true_count();
            }
            let secs = start.elapsed().as_secs_f64();
            let rate = ROWS as f64 * f64::from(ITERATIONS) / secs;
            println!("{name}: {:.0} M rows/s ({selected} selected)", rate / 1e6);
        }
    }

    #[test]
    fn missing_or_mistyped_columns_are_errors() {
        let b = batch(vec![("x", int32(&[Some(1)]))]);
        assert!(
            compile(&col(3, SqlType::Int))
                .unwrap()
                .evaluate(&b)
                .is_err()
        );
        assert!(
            compile(&col(0, SqlType::Varchar))
                .unwrap()
                .evaluate(&b)
                .is_err()
        );
        let s = batch(vec![(
            "s",
            Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
        )]);
        assert!(
            compile(&col(0, SqlType::Varchar))
                .unwrap()
                .evaluate(&s)
                .is_ok()
        );
    }
}
