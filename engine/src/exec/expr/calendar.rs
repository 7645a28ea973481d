//! Flink's one-field extractors, planned as EXTRACT: `YEAR(ts)`,
//! `QUARTER`, `MONTH`, `WEEK` (ISO), `DAYOFMONTH`, `DAYOFYEAR`, `HOUR`,
//! `MINUTE`, `SECOND` → BIGINT, and `DAYOFWEEK(ts)`, which counts from
//! Sunday = 1 to Saturday = 7 as Flink's (`EXTRACT(DOW ...)` counts from 0).

use sqlparser::ast::BinaryOperator;

use super::functions::{FunctionDef, arity, not_compiled};
use crate::error::{PlanResult, SqlPos};
use crate::plan::expr::{Expr, Literal, ScalarFunc, TimeUnitField};
use crate::sql::typing::expect_type;
use crate::types::SqlType;

macro_rules! extractors {
    ($($id:ident $name:literal => $field:ident,)*) => {
        $(
            #[doc = concat!("`", $name, "(ts)`.")]
            pub(crate) static $id: FunctionDef = FunctionDef {
                name: $name,
                names: &[$name],
                aliases: &[],
                plan: |name, args, pos| extract(name, args, pos, TimeUnitField::$field),
                compile: not_compiled,
            };
        )*
    };
}

extractors! {
    YEAR "year" => Year,
    QUARTER "quarter" => Quarter,
    MONTH "month" => Month,
    WEEK "week" => Week,
    DAYOFMONTH "dayofmonth" => Day,
    DAYOFYEAR "dayofyear" => DayOfYear,
    HOUR "hour" => Hour,
    MINUTE "minute" => Minute,
    SECOND "second" => Second,
}

/// `DAYOFWEEK(ts)`: Sunday = 1.
pub(crate) static DAYOFWEEK: FunctionDef = FunctionDef {
    name: "dayofweek",
    names: &["dayofweek"],
    aliases: &[],
    plan: |name, args, pos| {
        let dow = extract(name, args, pos, TimeUnitField::DayOfWeek)?;
        crate::sql::typing::binary(
            &BinaryOperator::Plus,
            dow,
            Expr::Literal(Literal::BigInt(1)),
            pos,
        )
    },
    compile: not_compiled,
};

fn extract(name: &str, mut args: Vec<Expr>, pos: SqlPos, f: TimeUnitField) -> PlanResult<Expr> {
    arity(name, &args, 1..=1, pos)?;
    let ts = expect_type(args.remove(0), SqlType::Timestamp, name, pos)?;
    Ok(Expr::Function {
        func: ScalarFunc::Extract(f),
        args: vec![ts],
        ty: SqlType::BigInt,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn extractors_read_their_field() {
        // 2026-01-03T19:05:09Z, a Saturday
        let b = batch(vec![("t", tss(&[Some(1_767_467_109_000), None]))]);
        let ts = || vec![col(0, SqlType::Timestamp)];
        let p = SqlPos::default();
        for (def, want) in [
            (&YEAR, 2026),
            (&QUARTER, 1),
            (&MONTH, 1),
            (&WEEK, 1),
            (&DAYOFMONTH, 3),
            (&DAYOFYEAR, 3),
            (&HOUR, 19),
            (&MINUTE, 5),
            (&SECOND, 9),
            (&DAYOFWEEK, 7),
        ] {
            let e = (def.plan)(def.name, ts(), p).unwrap();
            same(&eval(&e, &b), int64(&[Some(want), None]));
        }
    }
}
