//! Function calls in the planner: built-in scalar functions (their
//! signatures and result types), time fields, and WebAssembly UDF calls.

use sqlparser::ast::{self, DateTimeField};

use crate::error::{PlanError, PlanResult, SqlPos};
use crate::exec::expr::functions;
use crate::plan::expr::{Expr, TimeUnitField};
use crate::types::SqlType;

use super::typing::*;

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
/// against the module's self-description (INT widens to BIGINT, integers
/// and DECIMALs to DOUBLE, NULL to anything).
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
            || (want == SqlType::Double
                && matches!(got, SqlType::Int | SqlType::BigInt | SqlType::Decimal(..)))
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
        .with_hint(
            if args.len() == signature.args.len()
                && args.iter().zip(&signature.args).any(|(a, &t)| {
                    matches!(a.sql_type(), SqlType::Decimal(..)) && !fits(a.sql_type(), t)
                })
            {
                "the WebAssembly ABI has no DECIMAL: a DECIMAL reaches a DOUBLE parameter as the nearest DOUBLE; for an exact value pass it scaled as a BIGINT, e.g. CAST(price * 100 AS BIGINT) (docs/abi.md)"
            } else {
                "pass arguments of those types, or CAST them"
            },
        ));
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

pub(crate) fn time_field_name(name: &str) -> Option<TimeUnitField> {
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

/// The functions SQL can call without a module, as (name, kind): the
/// scalar functions of the registry, the aggregates and the ranking
/// functions of `OVER` (for listings and editors' completion).
pub fn builtin_functions() -> Vec<(&'static str, &'static str)> {
    functions::listed_names()
        .into_iter()
        .map(|n| (n, "scalar"))
        .chain(AGGREGATE_FUNCTIONS.split(", ").map(|n| (n, "aggregate")))
        .chain(["row_number", "rank", "dense_rank"].map(|n| (n, "ranking")))
        .collect()
}

/// Whether `name` (any case) is a function SQL defines itself — a scalar
/// function, an aggregate, a ranking function or a function-like keyword
/// (CAST, the window table functions): a UDF may not take it, since the
/// built-in one would hide it.
pub fn is_reserved_function_name(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "cast",
        "try_cast",
        "tumble",
        "hop",
        "session",
        "descriptor",
        "table",
        "row_number",
        "rank",
        "dense_rank",
        "session_start",
        "session_end",
        "proctime",
    ];
    let lower = name.to_ascii_lowercase();
    functions::lookup(&lower).is_some()
        || crate::agg::AggregateFunction::from_name(&lower).is_some()
        || KEYWORDS.contains(&lower.as_str())
}

/// Whether SQL knows a scalar function `name` (lower case) of its own.
pub(super) fn is_builtin_scalar(name: &str) -> bool {
    functions::lookup(name).is_some()
}

/// A call of a built-in scalar function, checked and typed by its
/// definition (`exec/expr/functions.rs`).
pub(super) fn scalar_function(name: &str, args: Vec<Expr>, pos: SqlPos) -> PlanResult<Expr> {
    match functions::lookup(name) {
        Some(def) => (def.plan)(name, args, pos),
        None => Err(unknown_function(name, &[], pos)),
    }
}

/// No function is called `name`: the error, suggesting the closest of the
/// built-in functions and `udfs` (the uploaded modules' functions).
pub(super) fn unknown_function(name: &str, udfs: &[&str], pos: SqlPos) -> PlanError {
    let scalars = functions::listed_names();
    let known: Vec<&str> = scalars
        .iter()
        .copied()
        .chain(AGGREGATE_FUNCTIONS.split(", "))
        .chain(udfs.iter().copied())
        .collect();
    let list = scalars.join(", ");
    let modules = if udfs.is_empty() {
        String::new()
    } else {
        format!("; from modules: {}", udfs.join(", "))
    };
    let hint = match crate::sql::scope::closest(name, &known) {
        Some(s) => format!(
            "did you mean '{s}'? built-in functions: {list}; aggregates: {AGGREGATE_FUNCTIONS}{modules}"
        ),
        None => format!("built-in functions: {list}; aggregates: {AGGREGATE_FUNCTIONS}{modules}"),
    };
    PlanError::new(format!("unknown function '{name}'"), pos).with_hint(hint)
}
