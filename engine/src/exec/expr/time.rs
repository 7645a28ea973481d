//! Time functions over TIMESTAMP (milliseconds since the epoch, UTC):
//! EXTRACT, DATE_TRUNC and the tumbling-window bounds.
//!
//! Fixed-size units (millisecond to day, DOW, ISO week start, epoch, tumble)
//! are pure integer arithmetic on the milliseconds, using floor division so
//! that times before 1970 land in the right unit (`-1 ms` is
//! `1969-12-31T23:59:59.999Z`). Calendar units (year, quarter, month, day of
//! month / year, ISO week number) go through `chrono` dates; a timestamp
//! beyond chrono's range (±262 000 years) gives NULL for those.
//!
//! * EXTRACT → BIGINT: DOW counts from Sunday = 0; WEEK is the ISO week
//!   number; MILLISECOND is `second * 1000 + ms` and EPOCH whole seconds
//!   (floored), as PostgreSQL.
//! * DATE_TRUNC → TIMESTAMP for YEAR, QUARTER, MONTH, WEEK (ISO: Monday),
//!   DAY, HOUR, MINUTE, SECOND, MILLISECOND.
//! * TUMBLE_START(size) = `ts - ts.rem_euclid(size)` (windows aligned to the
//!   epoch), TUMBLE_END = start + size (exclusive).
//!
//! Results within one unit of the i64 range wrap instead of failing.

use std::sync::Arc;

use arrow::array::{ArrayRef, TimestampMillisecondArray};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, NaiveDate};

use super::Node;
use super::compile::{arity, finish, ill_typed, sub};
use super::functions::{FunctionDef, arity as plan_arity};
use super::value::{Value, internal, map_value, timestamps};
use crate::error::ExecResult;
use crate::error::{PlanError, SqlPos};
use crate::plan::expr::{Expr, Literal, ScalarFunc, TimeUnitField};
use crate::sql::functions::time_field_name;
use crate::sql::typing::expect_type;
use crate::types::SqlType;

const MS_SECOND: i64 = 1000;
const MS_MINUTE: i64 = 60 * MS_SECOND;
const MS_HOUR: i64 = 60 * MS_MINUTE;
const MS_DAY: i64 = 24 * MS_HOUR;
/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// Which time function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeOp {
    Extract(TimeUnitField),
    Trunc(TimeUnitField),
    TumbleStart(i64),
    TumbleEnd(i64),
}

/// `EXTRACT(field FROM ts)`: planned from its own syntax.
pub(crate) static EXTRACT: FunctionDef = FunctionDef {
    name: "extract",
    names: &["extract"],
    aliases: &[],
    plan: |_name, _args, pos| {
        Err(
            PlanError::new("EXTRACT is written EXTRACT(field FROM ts)", pos)
                .with_hint("e.g. EXTRACT(HOUR FROM date_time)"),
        )
    },
    compile: TimeCall::compile,
};

/// `DATE_TRUNC('unit', ts)`.
pub(crate) static DATE_TRUNC: FunctionDef = FunctionDef {
    name: "date_trunc",
    names: &["date_trunc"],
    aliases: &[],
    plan: |name, mut args, pos| {
        plan_arity(name, &args, 2..=2, pos)?;
        let unit = match &args[0] {
            Expr::Literal(Literal::Varchar(u)) => time_field_name(u).ok_or_else(|| {
                PlanError::new(format!("unknown DATE_TRUNC unit '{u}'"), pos)
                    .with_hint("use 'year', 'quarter', 'month', 'week', 'day', 'hour', 'minute', 'second' or 'millisecond'")
            })?,
            _ => {
                return Err(PlanError::new(
                    "DATE_TRUNC's unit must be a string literal such as 'hour'",
                    pos,
                ));
            }
        };
        let ts = expect_type(args.remove(1), SqlType::Timestamp, name, pos)?;
        Ok(Expr::Function {
            func: ScalarFunc::DateTrunc(unit),
            args: vec![ts],
            ty: SqlType::Timestamp,
        })
    },
    compile: TimeCall::compile,
};

/// The start of a row's tumbling window: a TUMBLE(...) relation's
/// `window_start` (no SQL name).
pub(crate) static TUMBLE_START: FunctionDef = FunctionDef {
    name: "tumble_start",
    names: &[],
    aliases: &[],
    plan: |_, _, pos| Err(not_callable(pos)),
    compile: TimeCall::compile,
};

/// The end of a row's tumbling window (no SQL name).
pub(crate) static TUMBLE_END: FunctionDef = FunctionDef {
    name: "tumble_end",
    names: &[],
    aliases: &[],
    plan: |_, _, pos| Err(not_callable(pos)),
    compile: TimeCall::compile,
};

/// Internal functions have no SQL name, so this is never reached from SQL.
fn not_callable(pos: SqlPos) -> PlanError {
    PlanError::new("window bounds are not functions", pos)
        .with_hint("read the window_start and window_end columns of TUMBLE(...)")
}

/// A call of a time function on one TIMESTAMP argument.
#[derive(Debug)]
pub(crate) struct TimeCall {
    op: TimeOp,
    arg: Node,
}

impl TimeCall {
    /// Compiles EXTRACT, DATE_TRUNC, TUMBLE_START or TUMBLE_END.
    pub(crate) fn compile(
        expr: &Expr,
        func: ScalarFunc,
        args: &[Expr],
        ty: SqlType,
    ) -> ExecResult<Node> {
        use TimeUnitField as F;
        arity(expr, args, 1, 1)?;
        let (op, produced) = match func {
            ScalarFunc::Extract(f) => (TimeOp::Extract(f), SqlType::BigInt),
            ScalarFunc::DateTrunc(
                f @ (F::Year
                | F::Quarter
                | F::Month
                | F::Week
                | F::Day
                | F::Hour
                | F::Minute
                | F::Second
                | F::Millisecond),
            ) => (TimeOp::Trunc(f), SqlType::Timestamp),
            ScalarFunc::DateTrunc(f) => {
                return Err(internal(ill_typed(
                    expr,
                    format!("DATE_TRUNC does not support {}", f.name()),
                )));
            }
            ScalarFunc::TumbleStart(size) | ScalarFunc::TumbleEnd(size) if size <= 0 => {
                return Err(internal(ill_typed(
                    expr,
                    format!("window size must be positive, got {size} ms"),
                )));
            }
            ScalarFunc::TumbleStart(size) => (TimeOp::TumbleStart(size), SqlType::Timestamp),
            ScalarFunc::TumbleEnd(size) => (TimeOp::TumbleEnd(size), SqlType::Timestamp),
            other => return Err(internal(format!("{} is not a time function", other.name()))),
        };
        let node = Node::Time(Box::new(TimeCall {
            op,
            arg: sub(&args[0], SqlType::Timestamp)?,
        }));
        finish(node, produced, ty)
    }

    /// Evaluates over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let op = self.op;
        map_value(self.arg.eval(batch)?, |a| {
            let ts = timestamps(a)?;
            match op {
                TimeOp::Extract(f) => Ok(extract(ts, f)),
                TimeOp::Trunc(f) => trunc(ts, f),
                TimeOp::TumbleStart(size) => {
                    Ok(Arc::new(ts.unary::<_, TimestampMillisecondType>(|ms| {
                        floor_to(ms, size)
                    })))
                }
                TimeOp::TumbleEnd(size) => {
                    Ok(Arc::new(ts.unary::<_, TimestampMillisecondType>(|ms| {
                        floor_to(ms, size).wrapping_add(size)
                    })))
                }
            }
        })
    }
}

/// The start of the `unit`-sized, epoch-aligned interval containing `ms`.
fn floor_to(ms: i64, unit: i64) -> i64 {
    ms.wrapping_sub(ms.rem_euclid(unit))
}

/// The UTC date of `ms`.
fn date_of(ms: i64) -> Option<NaiveDate> {
    let days = i32::try_from(ms.div_euclid(MS_DAY) + EPOCH_DAYS_FROM_CE).ok()?;
    NaiveDate::from_num_days_from_ce_opt(days)
}

/// Midnight UTC of `date` in epoch milliseconds.
fn ms_of(date: NaiveDate) -> i64 {
    (i64::from(date.num_days_from_ce()) - EPOCH_DAYS_FROM_CE) * MS_DAY
}

fn extract(ts: &TimestampMillisecondArray, f: TimeUnitField) -> ArrayRef {
    use TimeUnitField as F;
    let date = |g: fn(NaiveDate) -> i64| ts.unary_opt::<_, Int64Type>(move |ms| date_of(ms).map(g));
    Arc::new(match f {
        F::Epoch => ts.unary::<_, Int64Type>(|ms| ms.div_euclid(MS_SECOND)),
        F::Millisecond => ts.unary::<_, Int64Type>(|ms| ms.rem_euclid(MS_MINUTE)),
        F::Second => ts.unary::<_, Int64Type>(|ms| ms.div_euclid(MS_SECOND).rem_euclid(60)),
        F::Minute => ts.unary::<_, Int64Type>(|ms| ms.div_euclid(MS_MINUTE).rem_euclid(60)),
        F::Hour => ts.unary::<_, Int64Type>(|ms| ms.div_euclid(MS_HOUR).rem_euclid(24)),
        // 1970-01-01 was a Thursday (4)
        F::DayOfWeek => ts.unary::<_, Int64Type>(|ms| (ms.div_euclid(MS_DAY) + 4).rem_euclid(7)),
        F::Day => date(|d| i64::from(d.day())),
        F::DayOfYear => date(|d| i64::from(d.ordinal())),
        F::Week => date(|d| i64::from(d.iso_week().week())),
        F::Month => date(|d| i64::from(d.month())),
        F::Quarter => date(|d| i64::from(d.month0() / 3 + 1)),
        F::Year => date(|d| i64::from(d.year())),
    })
}

fn trunc(ts: &TimestampMillisecondArray, f: TimeUnitField) -> ExecResult<ArrayRef> {
    use TimeUnitField as F;
    let fixed = |unit: i64| ts.unary::<_, TimestampMillisecondType>(move |ms| floor_to(ms, unit));
    let calendar = |g: fn(NaiveDate) -> Option<NaiveDate>| {
        ts.unary_opt::<_, TimestampMillisecondType>(move |ms| date_of(ms).and_then(g).map(ms_of))
    };
    Ok(Arc::new(match f {
        F::Millisecond => ts.clone(),
        F::Second => fixed(MS_SECOND),
        F::Minute => fixed(MS_MINUTE),
        F::Hour => fixed(MS_HOUR),
        F::Day => fixed(MS_DAY),
        // 1970-01-05 (day 4) was a Monday
        F::Week => ts.unary::<_, TimestampMillisecondType>(|ms| {
            let days = ms.div_euclid(MS_DAY);
            (days - (days - 4).rem_euclid(7)).wrapping_mul(MS_DAY)
        }),
        F::Month => calendar(|d| d.with_day(1)),
        F::Quarter => calendar(|d| NaiveDate::from_ymd_opt(d.year(), d.month0() / 3 * 3 + 1, 1)),
        F::Year => calendar(|d| NaiveDate::from_ymd_opt(d.year(), 1, 1)),
        other => {
            return Err(internal(format!(
                "DATE_TRUNC does not support {}",
                other.name()
            )));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use TimeUnitField as F;

    /// 2026-01-01T00:00:10.250Z (a Thursday)
    const T: i64 = 1_767_225_610_250;

    fn ex(f: F, v: &[Option<i64>]) -> ArrayRef {
        let e = call(
            ScalarFunc::Extract(f),
            vec![col(0, SqlType::Timestamp)],
            SqlType::BigInt,
        );
        eval1(&e, tss(v))
    }

    fn tr(f: F, v: &[Option<i64>]) -> ArrayRef {
        let e = call(
            ScalarFunc::DateTrunc(f),
            vec![col(0, SqlType::Timestamp)],
            SqlType::Timestamp,
        );
        eval1(&e, tss(v))
    }

    #[test]
    fn extract_every_field() {
        // T, 1969-12-31T23:59:59.999Z, 2024-02-29T13:45:30Z (leap day, a Thursday), NULL
        let v = [Some(T), Some(-1), Some(1_709_214_330_000), None];
        let want: [(F, [i64; 3]); 12] = [
            (F::Year, [2026, 1969, 2024]),
            (F::Quarter, [1, 4, 1]),
            (F::Month, [1, 12, 2]),
            (F::Week, [1, 1, 9]),
            (F::Day, [1, 31, 29]),
            (F::DayOfWeek, [4, 3, 4]),
            (F::DayOfYear, [1, 365, 60]),
            (F::Hour, [0, 23, 13]),
            (F::Minute, [0, 59, 45]),
            (F::Second, [10, 59, 30]),
            (F::Millisecond, [10_250, 59_999, 30_000]),
            (F::Epoch, [1_767_225_610, -1, 1_709_214_330]),
        ];
        for (f, w) in want {
            let expect: Vec<Option<i64>> = w.iter().map(|x| Some(*x)).chain([None]).collect();
            same(&ex(f, &v), int64(&expect));
        }
    }

    #[test]
    fn extract_beyond_chrono_range_is_null() {
        let out = ex(F::Year, &[Some(i64::MAX), Some(i64::MIN)]);
        assert_eq!(out.null_count(), 2);
        // fixed units still work
        same(
            &ex(F::Epoch, &[Some(i64::MIN)]),
            int64(&[Some(i64::MIN.div_euclid(1000))]),
        );
    }

    #[test]
    fn date_trunc_every_unit() {
        // 2026-05-14T17:23:45.678Z (a Thursday)
        let t = 1_778_779_425_678;
        let day = 1_778_716_800_000; // 2026-05-14T00:00:00Z
        let want = [
            (F::Year, 1_767_225_600_000),    // 2026-01-01
            (F::Quarter, 1_775_001_600_000), // 2026-04-01
            (F::Month, 1_777_593_600_000),   // 2026-05-01
            (F::Week, 1_778_457_600_000),    // Monday 2026-05-11
            (F::Day, day),
            (F::Hour, day + 17 * MS_HOUR),
            (F::Minute, day + 17 * MS_HOUR + 23 * MS_MINUTE),
            (F::Second, t - 678),
            (F::Millisecond, t),
        ];
        for (f, w) in want {
            same(&tr(f, &[Some(t), None]), tss(&[Some(w), None]));
        }
    }

    #[test]
    fn date_trunc_before_the_epoch() {
        // -1 ms = 1969-12-31T23:59:59.999Z, a Wednesday
        same(&tr(F::Second, &[Some(-1)]), tss(&[Some(-1000)]));
        same(&tr(F::Day, &[Some(-1)]), tss(&[Some(-MS_DAY)]));
        same(&tr(F::Week, &[Some(-1)]), tss(&[Some(-3 * MS_DAY)]));
        same(&tr(F::Week, &[Some(0)]), tss(&[Some(-3 * MS_DAY)]));
        same(&tr(F::Month, &[Some(-1)]), tss(&[Some(-31 * MS_DAY)]));
        same(&tr(F::Year, &[Some(-1)]), tss(&[Some(-365 * MS_DAY)]));
        same(&tr(F::Quarter, &[Some(-1)]), tss(&[Some(-92 * MS_DAY)]));
    }

    #[test]
    fn unsupported_units_and_sizes_are_rejected() {
        for f in [F::DayOfWeek, F::DayOfYear, F::Epoch] {
            let e = call(
                ScalarFunc::DateTrunc(f),
                vec![col(0, SqlType::Timestamp)],
                SqlType::Timestamp,
            );
            assert!(super::super::compile(&e).is_err());
        }
        let e = call(
            ScalarFunc::TumbleStart(0),
            vec![col(0, SqlType::Timestamp)],
            SqlType::Timestamp,
        );
        assert!(super::super::compile(&e).is_err());
    }

    #[test]
    fn tumble_windows_align_to_the_epoch() {
        let v = [
            Some(0),
            Some(9_999),
            Some(10_000),
            Some(-1),
            Some(-10_000),
            Some(-10_001),
            None,
        ];
        let start = call(
            ScalarFunc::TumbleStart(10_000),
            vec![col(0, SqlType::Timestamp)],
            SqlType::Timestamp,
        );
        let end = call(
            ScalarFunc::TumbleEnd(10_000),
            vec![col(0, SqlType::Timestamp)],
            SqlType::Timestamp,
        );
        let starts = [
            Some(0),
            Some(0),
            Some(10_000),
            Some(-10_000),
            Some(-10_000),
            Some(-20_000),
            None,
        ];
        same(&eval1(&start, tss(&v)), tss(&starts));
        let ends: Vec<Option<i64>> = starts.iter().map(|s| s.map(|s| s + 10_000)).collect();
        same(&eval1(&end, tss(&v)), tss(&ends));
    }
}
