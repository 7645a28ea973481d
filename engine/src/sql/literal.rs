//! Interval and timestamp literals.

use sqlparser::ast::{self, DateTimeField, Value};

use crate::error::{PlanError, PlanResult, SqlPos};

const INTERVAL_HINT: &str =
    "write e.g. INTERVAL '10' SECOND, INTERVAL '1' MINUTE or INTERVAL '500 milliseconds'";

fn unit_ms(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_lowercase().trim_end_matches('s') {
        "millisecond" | "m" => 1,
        "second" | "sec" => 1000,
        "minute" | "min" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        _ => return None,
    })
}

fn field_ms(f: &DateTimeField) -> Option<i64> {
    Some(match f {
        DateTimeField::Millisecond | DateTimeField::Milliseconds => 1,
        DateTimeField::Second | DateTimeField::Seconds => 1000,
        DateTimeField::Minute | DateTimeField::Minutes => 60_000,
        DateTimeField::Hour | DateTimeField::Hours => 3_600_000,
        DateTimeField::Day | DateTimeField::Days => 86_400_000,
        _ => return None,
    })
}

/// The length of an `INTERVAL` literal in milliseconds. Only fixed-size
/// units (milliseconds to days) are accepted: months and years vary.
///
/// # Errors
/// A non-literal value, an unknown or variable unit, or a bad number.
pub(crate) fn interval_ms(iv: &ast::Interval, pos: SqlPos) -> PlanResult<i64> {
    let text = match iv.value.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.clone(),
            _ => {
                return Err(PlanError::new(
                    format!("unsupported interval value {}", iv.value),
                    pos,
                )
                .with_hint(INTERVAL_HINT));
            }
        },
        other => {
            return Err(
                PlanError::new(format!("unsupported interval value {other}"), pos)
                    .with_hint(INTERVAL_HINT),
            );
        }
    };
    if iv.last_field.is_some() {
        return Err(
            PlanError::new("interval ranges like HOUR TO SECOND are not supported", pos)
                .with_hint(INTERVAL_HINT),
        );
    }
    let text = text.trim();
    let (number, unit) = match &iv.leading_field {
        Some(f) => {
            let ms = field_ms(f).ok_or_else(|| {
                PlanError::new(format!("interval unit {f} has no fixed length"), pos)
                    .with_hint("use MILLISECOND, SECOND, MINUTE, HOUR or DAY")
            })?;
            (text, ms)
        }
        None => {
            let (n, u) = text.split_once(char::is_whitespace).ok_or_else(|| {
                PlanError::new(format!("interval '{text}' has no unit"), pos)
                    .with_hint(INTERVAL_HINT)
            })?;
            let ms = unit_ms(u.trim()).ok_or_else(|| {
                PlanError::new(format!("unknown interval unit '{}'", u.trim()), pos)
                    .with_hint(INTERVAL_HINT)
            })?;
            (n, ms)
        }
    };
    let value: f64 = number.parse().map_err(|_| {
        PlanError::new(format!("interval value '{number}' is not a number"), pos)
            .with_hint(INTERVAL_HINT)
    })?;
    let ms = value * unit as f64;
    if !ms.is_finite() || ms.abs() > 1e15 {
        return Err(PlanError::new(
            format!(
                "interval '{text}' is too long: at most 1e15 milliseconds (about 31,000 years)"
            ),
            pos,
        )
        .with_hint("Eddy's TIMESTAMPs span years 0000 to 9999; use a shorter interval"));
    }
    if ms.fract() != 0.0 {
        return Err(PlanError::new(
            format!("interval '{text}' is not a whole number of milliseconds"),
            pos,
        )
        .with_hint(INTERVAL_HINT));
    }
    Ok(ms as i64)
}

/// Parses `2026-01-01T00:00:10Z`, `2026-01-01 00:00:10[.250]` (UTC) or
/// `2026-01-01` into epoch milliseconds.
///
/// # Errors
/// A string in none of those forms.
pub(crate) fn parse_timestamp_literal(s: &str, pos: SqlPos) -> PlanResult<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    let day = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0));
    if let Some(t) = day {
        return Ok(t.and_utc().timestamp_millis());
    }
    Err(
        PlanError::new(format!("'{s}' is not a valid timestamp"), pos).with_hint(
            "write '2026-01-01 00:00:00' (UTC) or RFC 3339 such as '2026-01-01T00:00:00Z'",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::GenericDialect;
    use sqlparser::parser::Parser;

    fn iv(sql: &str) -> PlanResult<i64> {
        let e = Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_expr()
            .unwrap();
        match e {
            ast::Expr::Interval(i) => interval_ms(&i, SqlPos::default()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn intervals() {
        assert_eq!(iv("INTERVAL '10' SECOND").unwrap(), 10_000);
        assert_eq!(iv("INTERVAL '1' MINUTE").unwrap(), 60_000);
        assert_eq!(iv("INTERVAL '500 milliseconds'").unwrap(), 500);
        assert_eq!(iv("INTERVAL '2 hours'").unwrap(), 7_200_000);
        assert_eq!(iv("INTERVAL '1.5' SECOND").unwrap(), 1500);
        assert!(
            iv("INTERVAL '1' MONTH")
                .unwrap_err()
                .to_string()
                .contains("no fixed length")
        );
        assert!(iv("INTERVAL '10 fortnights'").is_err());
    }

    #[test]
    fn timestamps() {
        let p = |s| parse_timestamp_literal(s, SqlPos::default()).unwrap();
        assert_eq!(p("2026-01-01T00:00:10Z"), 1_767_225_610_000);
        assert_eq!(p("2026-01-01 00:00:10"), 1_767_225_610_000);
        assert_eq!(p("2026-01-01 00:00:10.250"), 1_767_225_610_250);
        assert_eq!(p("2026-01-01"), 1_767_225_600_000);
        assert!(parse_timestamp_literal("yesterday", SqlPos::default()).is_err());
    }
}
