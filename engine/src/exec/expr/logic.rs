//! Boolean logic: AND / OR / NOT (three-valued, Kleene), `IS [NOT] NULL`
//! and `[NOT] IN (list)`.
//!
//! `x IN (a, b, …)` is `x = a OR x = b OR …` under Kleene logic: TRUE if
//! equal to any item; otherwise NULL if `x` or any item is NULL; otherwise
//! FALSE. `NOT IN` is its negation, so `1 NOT IN (2, NULL)` is NULL. Lists
//! of at least [`SET_THRESHOLD`] non-NULL-typed constants of INT, BIGINT,
//! TIMESTAMP or VARCHAR are turned into a hash set at compile time; shorter
//! lists (and DOUBLE, BOOLEAN) run one vectorised comparison per item.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::kernels::boolean;
use arrow::compute::{and_kleene, or_kleene};
use arrow::datatypes::{DataType, Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use rustc_hash::FxHashSet;

use super::Node;
use super::compare::compare;
use super::compile::{ill_typed, literal_array, sub};
use super::value::{
    Value, arrow_err, booleans, internal, map_value, map_values, prim, strings, timestamps,
};
use crate::error::ExecResult;
use crate::plan::expr::{BinaryOp, Expr, Literal};
use crate::types::SqlType;

/// Lists of at least this many constants are matched with a hash set.
pub(crate) const SET_THRESHOLD: usize = 6;

/// `left AND right` / `left OR right`.
#[derive(Debug)]
pub(crate) struct Kleene {
    /// AND when true, OR when false.
    pub(crate) and: bool,
    pub(crate) left: Node,
    /// Evaluated only on the rows the left side leaves undecided.
    pub(crate) right: super::selective::Selective,
}

impl Kleene {
    /// Evaluates over `batch`. The right side is evaluated only on the
    /// rows the left side leaves undecided (not FALSE for AND, not TRUE for
    /// OR): not at all when it decides every row.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let l = self.left.eval(batch)?;
        let r = match &l {
            Value::Array(a) => {
                let a = booleans(a)?;
                // TRUE where the left side does not decide (NULL included)
                let open: BooleanArray = a
                    .iter()
                    .map(|v| Some(v.is_none_or(|v| v == self.and)))
                    .collect();
                if open.true_count() == 0 {
                    return Ok(l);
                }
                self.right.eval_where(batch, &open)?
            }
            Value::Scalar(_) => self.right.eval(batch)?,
        };
        let and = self.and;
        map_values(vec![l, r], batch.num_rows(), |a: &[ArrayRef]| {
            let (x, y) = (booleans(&a[0])?, booleans(&a[1])?);
            let out = if and {
                and_kleene(x, y)
            } else {
                or_kleene(x, y)
            };
            Ok(Arc::new(out.map_err(arrow_err("AND/OR"))?) as ArrayRef)
        })
    }
}

/// `NOT v`; NULL stays NULL.
pub(crate) fn not(v: Value) -> ExecResult<Value> {
    map_value(v, |a| {
        let out = boolean::not(booleans(a)?).map_err(arrow_err("NOT"))?;
        Ok(Arc::new(out) as ArrayRef)
    })
}

/// `v IS NULL` (or `IS NOT NULL` when `negated`); never NULL.
pub(crate) fn is_null(v: Value, negated: bool) -> ExecResult<Value> {
    map_value(v, |a| {
        let out = if negated {
            boolean::is_not_null(a)
        } else {
            boolean::is_null(a)
        };
        Ok(Arc::new(out.map_err(arrow_err("IS NULL"))?) as ArrayRef)
    })
}

/// Constant list items, hashed.
#[derive(Debug)]
enum LiteralSet {
    I32(FxHashSet<i32>),
    I64(FxHashSet<i64>),
    Str(FxHashSet<Box<str>>),
}

/// `expr [NOT] IN (list)`.
#[derive(Debug)]
pub(crate) struct InList {
    expr: Node,
    /// Items compared one by one (empty when `set` is used).
    items: Vec<Node>,
    /// The constant items, when all are constants.
    set: Option<LiteralSet>,
    /// Whether a NULL constant was among the items folded into `set`.
    set_has_null: bool,
    negated: bool,
}

impl InList {
    /// Compiles an IN list; items are converted to the operand's type.
    pub(crate) fn compile(expr: &Expr, list: &[Expr], negated: bool) -> ExecResult<Node> {
        let mut t = expr.sql_type();
        for item in list {
            t = SqlType::common(t, item.sql_type()).ok_or_else(|| {
                internal(ill_typed(expr, format!("IN list item {item} is not {t}")))
            })?;
        }
        if t == SqlType::Null || list.is_empty() {
            // NULL IN (...) is NULL; an empty list matches nothing.
            let v = if t == SqlType::Null {
                Value::null(&DataType::Boolean)
            } else {
                Value::constant(literal_array(&Literal::Boolean(negated)))?
            };
            return Ok(Node::Const(v));
        }
        let operand = sub(expr, t)?;
        let literals: Option<Vec<&Literal>> = list
            .iter()
            .map(|e| match e {
                Expr::Literal(l) => Some(l),
                _ => None,
            })
            .collect();
        if let Some(lits) = literals.filter(|l| l.len() >= SET_THRESHOLD)
            && let Some((set, set_has_null)) = literal_set(t, &lits)
        {
            return Ok(Node::InList(Box::new(InList {
                expr: operand,
                items: vec![],
                set: Some(set),
                set_has_null,
                negated,
            })));
        }
        let items = list
            .iter()
            .map(|e| sub(e, t))
            .collect::<ExecResult<Vec<_>>>()?;
        Ok(Node::InList(Box::new(InList {
            expr: operand,
            items,
            set: None,
            set_has_null: false,
            negated,
        })))
    }

    /// Evaluates over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let rows = batch.num_rows();
        let e = self.expr.eval(batch)?;
        let found = match &self.set {
            Some(set) => {
                let has_null = self.set_has_null;
                map_value(e, |a| {
                    Ok(Arc::new(probe(set, has_null, a.as_ref())?) as ArrayRef)
                })?
            }
            None => {
                let mut acc: Option<Value> = None;
                for item in &self.items {
                    let eq = compare(BinaryOp::Eq, &e, &item.eval(batch)?, rows)?;
                    acc = Some(match acc {
                        None => eq,
                        Some(prev) => map_values(vec![prev, eq], rows, |a: &[ArrayRef]| {
                            let out = or_kleene(booleans(&a[0])?, booleans(&a[1])?)
                                .map_err(arrow_err("IN"))?;
                            Ok(Arc::new(out) as ArrayRef)
                        })?,
                    });
                }
                acc.unwrap_or_else(|| Value::null(&DataType::Boolean))
            }
        };
        if self.negated { not(found) } else { Ok(found) }
    }
}

/// Hashes constant items of type `t`; `None` when the type is not hashed.
fn literal_set(t: SqlType, lits: &[&Literal]) -> Option<(LiteralSet, bool)> {
    let has_null = lits.iter().any(|l| matches!(l, Literal::Null(_)));
    let values = lits.iter().filter(|l| !matches!(l, Literal::Null(_)));
    let set = match t {
        SqlType::Int => LiteralSet::I32(
            values
                .map(|l| match l {
                    Literal::Int(v) => Some(*v),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        SqlType::BigInt | SqlType::Timestamp => LiteralSet::I64(
            values
                .map(|l| match (t, l) {
                    (SqlType::BigInt, Literal::BigInt(v))
                    | (SqlType::Timestamp, Literal::Timestamp(v)) => Some(*v),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        SqlType::Varchar => LiteralSet::Str(
            values
                .map(|l| match l {
                    Literal::Varchar(s) => Some(s.as_str().into()),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    };
    Some((set, has_null))
}

/// Set membership per row: TRUE when found; otherwise NULL when the row or
/// a list item is NULL; otherwise FALSE.
fn probe(set: &LiteralSet, has_null: bool, a: &dyn Array) -> ExecResult<BooleanArray> {
    let n = a.len();
    let bits = match set {
        LiteralSet::I32(s) => {
            let v = prim::<Int32Type>(a)?.values();
            BooleanBuffer::collect_bool(n, |i| s.contains(&v[i]))
        }
        LiteralSet::I64(s) if matches!(a.data_type(), DataType::Timestamp(..)) => {
            let v = timestamps(a)?.values();
            BooleanBuffer::collect_bool(n, |i| s.contains(&v[i]))
        }
        LiteralSet::I64(s) => {
            let v = prim::<Int64Type>(a)?.values();
            BooleanBuffer::collect_bool(n, |i| s.contains(&v[i]))
        }
        LiteralSet::Str(s) => {
            let v = strings(a)?;
            BooleanBuffer::collect_bool(n, |i| s.contains(v.value(i)))
        }
    };
    let nulls = if has_null {
        // unmatched rows become NULL
        NullBuffer::union(a.nulls(), Some(&NullBuffer::new(bits.clone())))
    } else {
        a.nulls().cloned()
    };
    Ok(BooleanArray::new(bits, nulls))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use BinaryOp::*;
    use SqlType::*;

    fn b3() -> RecordBatch {
        // all 9 combinations of TRUE / FALSE / NULL
        let t = [Some(true), Some(false), None];
        let mut l = vec![];
        let mut r = vec![];
        for x in t {
            for y in t {
                l.push(x);
                r.push(y);
            }
        }
        batch(vec![("l", bools(&l)), ("r", bools(&r))])
    }

    #[test]
    fn and_or_not_are_kleene() {
        let b = b3();
        let (t, f) = (Some(true), Some(false));
        same(
            &eval(&bin(And, col(0, Boolean), col(1, Boolean)), &b),
            bools(&[t, f, None, f, f, f, None, f, None]),
        );
        same(
            &eval(&bin(Or, col(0, Boolean), col(1, Boolean)), &b),
            bools(&[t, t, t, t, f, None, t, None, None]),
        );
        same(
            &eval(&Expr::Not(Box::new(col(0, Boolean))), &b),
            bools(&[f, f, f, t, t, t, None, None, None]),
        );
        // with constants and bare NULL
        same(
            &eval(&bin(And, col(0, Boolean), null(SqlType::Null)), &b),
            bools(&[None, None, None, f, f, f, None, None, None]),
        );
    }

    #[test]
    fn and_skips_right_side_when_left_is_all_false() {
        let b = batch(vec![("x", int32(&[Some(1), Some(2)]))]);
        // the right side would fail: column 5 does not exist
        let e = bin(And, bin(Gt, col(0, Int), int(10)), col(5, Boolean));
        same(&eval(&e, &b), bools(&[Some(false), Some(false)]));
        let e = bin(Or, bin(Lt, col(0, Int), int(10)), col(5, Boolean));
        same(&eval(&e, &b), bools(&[Some(true), Some(true)]));
    }

    #[test]
    fn is_null_is_never_null() {
        let b = batch(vec![("x", int32(&[Some(1), None]))]);
        let isn = |negated| Expr::IsNull {
            expr: Box::new(col(0, Int)),
            negated,
        };
        same(&eval(&isn(false), &b), bools(&[Some(false), Some(true)]));
        same(&eval(&isn(true), &b), bools(&[Some(true), Some(false)]));
        let lit_null = Expr::IsNull {
            expr: Box::new(null(SqlType::Null)),
            negated: false,
        };
        same(&eval(&lit_null, &b), bools(&[Some(true), Some(true)]));
    }

    fn in_list(e: Expr, list: Vec<Expr>, negated: bool) -> Expr {
        Expr::InList {
            expr: Box::new(e),
            list,
            negated,
        }
    }

    #[test]
    fn in_list_is_three_valued_short_and_long() {
        let b = batch(vec![("x", int64(&[Some(1), Some(3), None]))]);
        let (t, f) = (Some(true), Some(false));
        for extra in [0, SET_THRESHOLD] {
            let pad = |mut v: Vec<Expr>| {
                v.extend((0..extra as i64).map(|i| big(100 + i)));
                v
            };
            let plain = pad(vec![big(1), big(2)]);
            let with_null = pad(vec![big(1), null(BigInt)]);
            same(
                &eval(&in_list(col(0, BigInt), plain.clone(), false), &b),
                bools(&[t, f, None]),
            );
            same(
                &eval(&in_list(col(0, BigInt), plain, true), &b),
                bools(&[f, t, None]),
            );
            same(
                &eval(&in_list(col(0, BigInt), with_null.clone(), false), &b),
                bools(&[t, None, None]),
            );
            same(
                &eval(&in_list(col(0, BigInt), with_null, true), &b),
                bools(&[f, None, None]),
            );
        }
    }

    #[test]
    fn in_list_of_strings_timestamps_doubles_and_columns() {
        let b = batch(vec![
            ("s", strs(&[Some("b"), Some("z"), None])),
            ("t", tss(&[Some(5), Some(6), Some(7)])),
            ("d", f64s(&[Some(-0.0), Some(1.5), None])),
            ("i", int32(&[Some(1), Some(2), Some(3)])),
        ]);
        let (t, f) = (Some(true), Some(false));
        let letters: Vec<Expr> = ["a", "b", "c", "d", "e", "f", "g"].map(text).into();
        same(
            &eval(&in_list(col(0, Varchar), letters, false), &b),
            bools(&[t, f, None]),
        );
        let times: Vec<Expr> = (0..7).map(|i| lit(Literal::Timestamp(i))).collect();
        same(
            &eval(&in_list(col(1, Timestamp), times, false), &b),
            bools(&[t, t, f]),
        );
        let doubles = vec![dbl(0.0), dbl(2.0)];
        same(
            &eval(&in_list(col(2, Double), doubles, false), &b),
            bools(&[t, f, None]),
        );
        // a column as an item, a constant operand
        let mixed = vec![col(3, Int), int(9)];
        same(&eval(&in_list(int(2), mixed, false), &b), bools(&[f, t, f]));
        let ints: Vec<Expr> = (0..8).map(int).collect();
        same(
            &eval(&in_list(col(3, Int), ints, true), &b),
            bools(&[f, f, f]),
        );
        // an INT operand against BIGINT items is widened, not the items narrowed
        let wide = vec![big(1 << 40), big(2)];
        same(
            &eval(&in_list(col(3, Int), wide, false), &b),
            bools(&[f, t, f]),
        );
        // NULL operand
        same(
            &eval(&in_list(null(SqlType::Null), vec![int(1)], false), &b),
            bools(&[None, None, None]),
        );
    }
}
