//! SQL data types and their Arrow representations.

use std::fmt;

use arrow::datatypes::{DataType, TimeUnit};

pub mod decimal;

/// The Arrow type of every TIMESTAMP column: milliseconds since the epoch, no zone.
pub const TIMESTAMP_TYPE: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

/// A SQL type as Eddy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SqlType {
    /// BOOLEAN
    Boolean,
    /// INT (32-bit)
    Int,
    /// BIGINT (64-bit)
    BigInt,
    /// DOUBLE (64-bit float)
    Double,
    /// DECIMAL(precision, scale): exact, at most 38 digits, `scale` of them
    /// after the point ([`decimal`]).
    Decimal(u8, u8),
    /// VARCHAR (UTF-8)
    Varchar,
    /// TIMESTAMP (milliseconds, no zone)
    Timestamp,
    /// INTERVAL (day-time, milliseconds); literals only.
    Interval,
    /// The type of a bare NULL literal; coerces to anything.
    Null,
}

impl SqlType {
    /// The Arrow type used for columns of this type.
    pub fn to_arrow(self) -> DataType {
        match self {
            SqlType::Boolean => DataType::Boolean,
            SqlType::Int => DataType::Int32,
            SqlType::BigInt => DataType::Int64,
            SqlType::Double => DataType::Float64,
            SqlType::Decimal(p, s) => DataType::Decimal128(p, s as i8),
            SqlType::Varchar => DataType::Utf8,
            SqlType::Timestamp => TIMESTAMP_TYPE,
            SqlType::Interval => DataType::Int64,
            SqlType::Null => DataType::Null,
        }
    }

    /// The SQL type of an Arrow column type, if Eddy supports it.
    pub fn from_arrow(dt: &DataType) -> Option<Self> {
        Some(match dt {
            DataType::Boolean => SqlType::Boolean,
            DataType::Int32 => SqlType::Int,
            DataType::Int64 => SqlType::BigInt,
            DataType::Float64 => SqlType::Double,
            DataType::Decimal128(p, s) if *s >= 0 && (*s as u8) <= *p => {
                SqlType::Decimal(*p, *s as u8)
            }
            DataType::Utf8 => SqlType::Varchar,
            DataType::Timestamp(TimeUnit::Millisecond, None) => SqlType::Timestamp,
            DataType::Null => SqlType::Null,
            _ => return None,
        })
    }

    /// Whether the type is INT, BIGINT, DOUBLE or DECIMAL.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            SqlType::Int | SqlType::BigInt | SqlType::Double | SqlType::Decimal(..)
        )
    }

    /// The precision and scale of an exact number as a DECIMAL: INT is
    /// DECIMAL(10, 0), BIGINT DECIMAL(19, 0).
    pub fn decimal_parts(self) -> Option<(u8, u8)> {
        match self {
            SqlType::Int => Some((10, 0)),
            SqlType::BigInt => Some((19, 0)),
            SqlType::Decimal(p, s) => Some((p, s)),
            _ => None,
        }
    }

    /// Whether the type is INT or BIGINT.
    pub fn is_integer(self) -> bool {
        matches!(self, SqlType::Int | SqlType::BigInt)
    }

    /// The common type two operands are coerced to for arithmetic or
    /// comparison, if there is one.
    pub fn common(a: SqlType, b: SqlType) -> Option<SqlType> {
        use SqlType::*;
        Some(match (a, b) {
            _ if a == b => a,
            (Null, t) | (t, Null) => t,
            (Int, BigInt) | (BigInt, Int) => BigInt,
            (Int | BigInt | Decimal(..), Double) | (Double, Int | BigInt | Decimal(..)) => Double,
            (Decimal(..), Int | BigInt | Decimal(..)) | (Int | BigInt, Decimal(..)) => {
                let (p, s) = decimal::union_type(a.decimal_parts()?, b.decimal_parts()?);
                Decimal(p, s)
            }
            _ => return None,
        })
    }

    /// Parses a SQL type name from `CREATE STREAM` / `CAST`.
    pub fn from_sql(dt: &sqlparser::ast::DataType) -> Option<Self> {
        use sqlparser::ast::DataType as D;
        Some(match dt {
            D::Boolean | D::Bool => SqlType::Boolean,
            D::Int(_) | D::Integer(_) | D::Int4(_) => SqlType::Int,
            D::BigInt(_) | D::Int8(_) | D::Int64 => SqlType::BigInt,
            D::Double(_) | D::DoublePrecision | D::Float8 | D::Float64 | D::Real | D::Float(_) => {
                SqlType::Double
            }
            D::Varchar(_) | D::String(_) | D::Text | D::CharVarying(_) | D::Char(_) => {
                SqlType::Varchar
            }
            D::Timestamp(_, _) | D::Datetime(_) => SqlType::Timestamp,
            D::Decimal(info) | D::Numeric(info) | D::Dec(info) => {
                let (p, s) = decimal_info(info)?;
                SqlType::Decimal(p, s)
            }
            _ => return None,
        })
    }
}

/// The precision and scale written in `DECIMAL(p, s)`: `DECIMAL` alone is
/// DECIMAL(10, 0) and `DECIMAL(p)` DECIMAL(p, 0), as in Flink; `None` when
/// they are out of range (1 ≤ p ≤ 38, 0 ≤ s ≤ p).
fn decimal_info(info: &sqlparser::ast::ExactNumberInfo) -> Option<(u8, u8)> {
    use sqlparser::ast::ExactNumberInfo as I;
    let (p, s) = match info {
        I::None => (10, 0),
        I::Precision(p) => (*p, 0),
        I::PrecisionAndScale(p, s) => (*p, u64::try_from(*s).ok()?),
    };
    (1..=u64::from(decimal::MAX_PRECISION))
        .contains(&p)
        .then_some(())
        .filter(|()| s <= p)
        .map(|()| (p as u8, s as u8))
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let SqlType::Decimal(p, s) = self {
            return write!(f, "DECIMAL({p}, {s})");
        }
        f.write_str(match self {
            SqlType::Boolean => "BOOLEAN",
            SqlType::Int => "INT",
            SqlType::BigInt => "BIGINT",
            SqlType::Double => "DOUBLE",
            SqlType::Decimal(..) => "DECIMAL",
            SqlType::Varchar => "VARCHAR",
            SqlType::Timestamp => "TIMESTAMP",
            SqlType::Interval => "INTERVAL",
            SqlType::Null => "NULL",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_type_promotes_numbers() {
        assert_eq!(
            SqlType::common(SqlType::Int, SqlType::BigInt),
            Some(SqlType::BigInt)
        );
        assert_eq!(
            SqlType::common(SqlType::BigInt, SqlType::Double),
            Some(SqlType::Double)
        );
        assert_eq!(
            SqlType::common(SqlType::Null, SqlType::Varchar),
            Some(SqlType::Varchar)
        );
        assert_eq!(SqlType::common(SqlType::Varchar, SqlType::Int), None);
    }

    #[test]
    fn arrow_round_trip() {
        for t in [
            SqlType::Boolean,
            SqlType::Int,
            SqlType::BigInt,
            SqlType::Double,
            SqlType::Decimal(23, 3),
            SqlType::Decimal(38, 0),
            SqlType::Varchar,
            SqlType::Timestamp,
        ] {
            assert_eq!(SqlType::from_arrow(&t.to_arrow()), Some(t));
        }
    }
}

/// The earliest TIMESTAMP Eddy accepts: 0000-01-01T00:00:00Z (the range
/// RFC 3339 can write, so every output can be read back), in ms. Input
/// outside the range is malformed; a computed TIMESTAMP outside it is NULL.
pub const MIN_TIMESTAMP_MS: i64 = -62_167_219_200_000;
/// The latest TIMESTAMP Eddy accepts: 9999-12-31T23:59:59.999Z, in ms.
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// A TIMESTAMP column with the values outside the supported range made
/// NULL (computed timestamps: `CAST(big AS TIMESTAMP)`, `ts + INTERVAL`).
pub fn timestamps_in_range(a: arrow::array::ArrayRef) -> arrow::array::ArrayRef {
    use arrow::array::{AsArray, TimestampMillisecondArray};
    use arrow::datatypes::TimestampMillisecondType;
    let Some(ts) = a.as_primitive_opt::<TimestampMillisecondType>() else {
        return a;
    };
    let inside = |v: i64| (MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&v);
    match (arrow::compute::min(ts), arrow::compute::max(ts)) {
        (Some(lo), Some(hi)) if !(inside(lo) && inside(hi)) => {
            let kept: TimestampMillisecondArray =
                ts.iter().map(|v| v.filter(|&v| inside(v))).collect();
            std::sync::Arc::new(kept.with_timezone_opt(ts.timezone()))
        }
        _ => a,
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC (`2026-01-01T00:00:10Z`, with
/// `.250` milliseconds only when non-zero).
pub fn format_timestamp_ms(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) if ms.rem_euclid(1000) == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => format!("{ms}ms"),
    }
}

/// Formats an interval in milliseconds the way SQL writes it: `10 SECOND`,
/// `1500 MILLISECOND`, `2 HOUR`.
pub fn format_interval_ms(ms: i64) -> String {
    const UNITS: [(i64, &str); 4] = [
        (86_400_000, "DAY"),
        (3_600_000, "HOUR"),
        (60_000, "MINUTE"),
        (1000, "SECOND"),
    ];
    for (size, name) in UNITS {
        if ms != 0 && ms % size == 0 {
            return format!("{} {name}", ms / size);
        }
    }
    format!("{ms} MILLISECOND")
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn formats_times_and_intervals() {
        assert_eq!(
            format_timestamp_ms(1_767_225_610_000),
            "2026-01-01T00:00:10Z"
        );
        assert_eq!(
            format_timestamp_ms(1_767_225_610_250),
            "2026-01-01T00:00:10.250Z"
        );
        assert_eq!(format_interval_ms(10_000), "10 SECOND");
        assert_eq!(format_interval_ms(7_200_000), "2 HOUR");
        assert_eq!(format_interval_ms(1500), "1500 MILLISECOND");
    }
}
