//! Function calls in the planner: built-in scalar functions (their
//! signatures and result types), time fields, and WebAssembly UDF calls.

use sqlparser::ast::{self, DateTimeField};

use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::{Expr, Literal, ScalarFunc, TimeUnitField};
use crate::types::SqlType;

use super::typing::*;

/// Built-in scalar functions, for messages.
const SCALAR_FUNCTIONS: &str = "lower, upper, length, char_length, substring, substr, concat, coalesce, abs, floor, ceil, round, extract, date_trunc";
/// Built-in aggregate functions, for messages.
const AGGREGATE_FUNCTIONS: &str = "count, sum, min, max, avg, stddev_samp, var_samp";

pub(super) fn display_call(name: &str, distinct: bool, star: bool, args: &[&ast::Expr]) -> String {
    let inner = if star {
        "*".to_string()
    } else {
        args.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("{name}({}{inner})", if distinct { "DISTINCT " } else { "" })
}

/// Coerces `e` to `ty`, folding literals.
/// A call of a registered WebAssembly function, its arguments checked
/// against the module's self-description (INT widens to BIGINT, integers to
/// DOUBLE, NULL to anything).
pub(super) fn udf_call(
    module: std::sync::Arc<crate::udf::UdfModule>,
    signature: crate::udf::UdfSignature,
    args: Vec<Expr>,
    pos: SqlPos,
) -> PlanResult<Expr> {
    let fits = |got: SqlType, want: SqlType| {
        got == want
            || got == SqlType::Null
            || (want == SqlType::BigInt && got == SqlType::Int)
            || (want == SqlType::Double && matches!(got, SqlType::Int | SqlType::BigInt))
    };
    let ok = args.len() == signature.args.len()
        && args
            .iter()
            .zip(&signature.args)
            .all(|(a, &t)| fits(a.sql_type(), t));
    if !ok {
        let got: Vec<String> = args.iter().map(|a| a.sql_type().to_string()).collect();
        return Err(PlanError::new(
            format!(
                "UDF {signature} cannot take ({}) (from module '{}')",
                got.join(", "),
                module.name
            ),
            pos,
        )
        .with_hint("pass arguments of those types, or CAST them"));
    }
    let args = args
        .into_iter()
        .zip(&signature.args)
        .map(|(a, &t)| coerce(a, t))
        .collect();
    Ok(Expr::Udf {
        udf: crate::plan::expr::UdfRef { module, signature },
        args,
    })
}

pub(super) fn time_field(f: &DateTimeField, pos: SqlPos) -> PlanResult<TimeUnitField> {
    use TimeUnitField as U;
    Ok(match f {
        DateTimeField::Year | DateTimeField::Years => U::Year,
        DateTimeField::Quarter => U::Quarter,
        DateTimeField::Month | DateTimeField::Months => U::Month,
        DateTimeField::Week(_) | DateTimeField::Weeks => U::Week,
        DateTimeField::Day | DateTimeField::Days => U::Day,
        DateTimeField::DayOfWeek | DateTimeField::Dow => U::DayOfWeek,
        DateTimeField::DayOfYear | DateTimeField::Doy => U::DayOfYear,
        DateTimeField::Hour | DateTimeField::Hours => U::Hour,
        DateTimeField::Minute | DateTimeField::Minutes => U::Minute,
        DateTimeField::Second | DateTimeField::Seconds => U::Second,
        DateTimeField::Millisecond | DateTimeField::Milliseconds => U::Millisecond,
        DateTimeField::Epoch => U::Epoch,
        other => {
            return Err(PlanError::new(format!("unsupported time field {other}"), pos).with_hint(
                "use YEAR, QUARTER, MONTH, WEEK, DAY, DOW, DOY, HOUR, MINUTE, SECOND, MILLISECOND or EPOCH",
            ));
        }
    })
}

pub(super) fn time_field_name(name: &str) -> Option<TimeUnitField> {
    use TimeUnitField as U;
    Some(match name.to_ascii_lowercase().as_str() {
        "year" => U::Year,
        "quarter" => U::Quarter,
        "month" => U::Month,
        "week" => U::Week,
        "day" => U::Day,
        "hour" => U::Hour,
        "minute" => U::Minute,
        "second" => U::Second,
        "millisecond" => U::Millisecond,
        _ => return None,
    })
}

pub(super) fn scalar_function(name: &str, mut args: Vec<Expr>, pos: SqlPos) -> PlanResult<Expr> {
    let arity = |n: std::ops::RangeInclusive<usize>, args: &Vec<Expr>| -> PlanResult<()> {
        if n.contains(&args.len()) {
            Ok(())
        } else {
            let want = if n.start() == n.end() {
                n.start().to_string()
            } else {
                format!("{} to {}", n.start(), n.end())
            };
            Err(PlanError::new(
                format!("{name} takes {want} argument(s), got {}", args.len()),
                pos,
            ))
        }
    };
    let (func, ty) = match name {
        "lower" | "upper" => {
            arity(1..=1, &args)?;
            args = vec![expect_type(args.remove(0), SqlType::Varchar, name, pos)?];
            (
                if name == "lower" {
                    ScalarFunc::Lower
                } else {
                    ScalarFunc::Upper
                },
                SqlType::Varchar,
            )
        }
        "length" | "char_length" | "character_length" => {
            arity(1..=1, &args)?;
            args = vec![expect_type(args.remove(0), SqlType::Varchar, name, pos)?];
            (ScalarFunc::Length, SqlType::BigInt)
        }
        "substring" | "substr" => {
            arity(2..=3, &args)?;
            let s = expect_type(args.remove(0), SqlType::Varchar, name, pos)?;
            let mut rest = args
                .into_iter()
                .map(|a| expect_integer(a, name, pos))
                .collect::<PlanResult<Vec<_>>>()?;
            rest.insert(0, s);
            return Ok(Expr::Function {
                func: ScalarFunc::Substring,
                args: rest,
                ty: SqlType::Varchar,
            });
        }
        "concat" => {
            if args.is_empty() {
                return Err(PlanError::new("concat takes at least one argument", pos));
            }
            let args = args
                .into_iter()
                .map(|a| coerce(a, SqlType::Varchar))
                .collect();
            return Ok(Expr::Function {
                func: ScalarFunc::Concat,
                args,
                ty: SqlType::Varchar,
            });
        }
        "coalesce" => {
            if args.is_empty() {
                return Err(PlanError::new("coalesce takes at least one argument", pos));
            }
            let mut ty = SqlType::Null;
            for a in &args {
                ty = common_or_err(ty, a, "COALESCE", pos)?;
            }
            let args = args.into_iter().map(|a| coerce(a, ty)).collect();
            return Ok(Expr::Function {
                func: ScalarFunc::Coalesce,
                args,
                ty,
            });
        }
        "abs" | "floor" | "ceil" | "ceiling" => {
            arity(1..=1, &args)?;
            let x = expect_numeric(args.remove(0), name, pos)?;
            let ty = x.sql_type();
            let func = match name {
                "abs" => ScalarFunc::Abs,
                "floor" => ScalarFunc::Floor,
                _ => ScalarFunc::Ceil,
            };
            return Ok(Expr::Function {
                func,
                args: vec![x],
                ty,
            });
        }
        "round" => {
            arity(1..=2, &args)?;
            let x = expect_numeric(args.remove(0), name, pos)?;
            let ty = x.sql_type();
            let mut all = vec![x];
            if let Some(d) = args.pop() {
                all.push(expect_integer(d, name, pos)?);
            }
            return Ok(Expr::Function {
                func: ScalarFunc::Round,
                args: all,
                ty,
            });
        }
        "date_trunc" => {
            arity(2..=2, &args)?;
            let unit = match &args[0] {
                Expr::Literal(Literal::Varchar(u)) => time_field_name(u).ok_or_else(|| {
                    PlanError::new(format!("unknown DATE_TRUNC unit '{u}'"), pos)
                        .with_hint("use 'year', 'quarter', 'month', 'week', 'day', 'hour', 'minute', 'second' or 'millisecond'")
                })?,
                _ => return Err(PlanError::new("DATE_TRUNC's unit must be a string literal such as 'hour'", pos)),
            };
            let ts = expect_type(args.remove(1), SqlType::Timestamp, name, pos)?;
            return Ok(Expr::Function {
                func: ScalarFunc::DateTrunc(unit),
                args: vec![ts],
                ty: SqlType::Timestamp,
            });
        }
        _ => {
            let known: Vec<&str> = SCALAR_FUNCTIONS
                .split(", ")
                .chain(AGGREGATE_FUNCTIONS.split(", "))
                .collect();
            let hint = match crate::sql::scope::closest(name, &known) {
                Some(s) => format!(
                    "did you mean '{s}'? built-in functions: {SCALAR_FUNCTIONS}; aggregates: {AGGREGATE_FUNCTIONS}"
                ),
                None => format!(
                    "built-in functions: {SCALAR_FUNCTIONS}; aggregates: {AGGREGATE_FUNCTIONS}"
                ),
            };
            return Err(PlanError::new(format!("unknown function '{name}'"), pos).with_hint(hint));
        }
    };
    Ok(Expr::Function { func, args, ty })
}
