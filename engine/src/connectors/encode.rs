//! Arrow → JSON lines or CSV text, shared by the file and stdout sinks.
//! TIMESTAMP is written as RFC 3339 UTC so the file source reads it back;
//! DECIMAL as a number with every digit of its scale (`12.50`).

use std::io::Write;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Float64Type, Int32Type, Int64Type, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use arrow::record_batch::RecordBatch;

use crate::catalog::Options;
use crate::error::ConnectorError;
use crate::types::format_timestamp_ms;

/// An output text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, keys in column order, NULL as `null`.
    Json,
    /// A header line, then comma-separated values; NULL is an empty field.
    Csv,
}

impl Format {
    /// Reads `format` (`json` by default).
    ///
    /// # Errors
    /// A value other than `json` or `csv`.
    pub fn from_options(o: &Options) -> Result<Self, ConnectorError> {
        Ok(
            if o.choice_or("format", &["json", "csv"], "json")? == "csv" {
                Format::Csv
            } else {
                Format::Json
            },
        )
    }
}

/// Encodes batches of one schema.
#[derive(Debug)]
pub struct Encoder {
    format: Format,
    /// JSON keys (`"name":`), pre-escaped.
    keys: Vec<Vec<u8>>,
    header: Option<Vec<u8>>,
}

impl Encoder {
    /// An encoder for batches of `schema`.
    pub fn new(format: Format, schema: &SchemaRef) -> Self {
        let keys = schema
            .fields()
            .iter()
            .map(|f| {
                let mut k = serde_json::to_vec(f.name()).unwrap_or_else(|_| b"\"?\"".to_vec());
                k.push(b':');
                k
            })
            .collect();
        let header = (format == Format::Csv).then(|| {
            let mut h = Vec::new();
            for (i, f) in schema.fields().iter().enumerate() {
                if i > 0 {
                    h.push(b',');
                }
                csv_text(&mut h, f.name());
            }
            h.push(b'\n');
            h
        });
        Self {
            format,
            keys,
            header,
        }
    }

    /// The CSV header line, the first time it is asked for.
    pub fn take_header(&mut self) -> Option<Vec<u8>> {
        self.header.take()
    }

    /// Appends the rows of `batch` to `out`.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) {
        let cols = batch.columns();
        for row in 0..batch.num_rows() {
            if self.format == Format::Json {
                out.push(b'{');
            }
            for (c, col) in cols.iter().enumerate() {
                if c > 0 {
                    out.push(b',');
                }
                if self.format == Format::Json {
                    out.extend_from_slice(&self.keys[c]);
                }
                value(self.format, col.as_ref(), row, out);
            }
            if self.format == Format::Json {
                out.push(b'}');
            }
            out.push(b'\n');
        }
    }
}

fn value(format: Format, col: &dyn Array, row: usize, out: &mut Vec<u8>) {
    if col.is_null(row) {
        if format == Format::Json {
            out.extend_from_slice(b"null");
        }
        return;
    }
    let _ = match col.data_type() {
        DataType::Int64 => write!(out, "{}", col.as_primitive::<Int64Type>().value(row)),
        DataType::Int32 => write!(out, "{}", col.as_primitive::<Int32Type>().value(row)),
        DataType::Float64 => {
            // one rule for every format: a non-finite DOUBLE (±inf, NaN) is
            // written as NULL (JSON has no such numbers; CSV readers disagree)
            let v = col.as_primitive::<Float64Type>().value(row);
            if v.is_finite() {
                write!(out, "{v}")
            } else if format == Format::Json {
                out.write_all(b"null")
            } else {
                Ok(())
            }
        }
        DataType::Decimal128(_, s) => {
            // exact: every digit of the scale, as a JSON number
            let mut t = String::with_capacity(42);
            let v = col
                .as_primitive::<arrow::datatypes::Decimal128Type>()
                .value(row);
            crate::types::decimal::write(v, *s as u8, &mut t);
            out.write_all(t.as_bytes())
        }
        DataType::Boolean => out.write_all(if col.as_boolean().value(row) {
            b"true"
        } else {
            b"false"
        }),
        DataType::Utf8 => {
            text(format, out, col.as_string::<i32>().value(row));
            Ok(())
        }
        DataType::Timestamp(TimeUnit::Millisecond, None) => {
            text(
                format,
                out,
                &format_timestamp_ms(col.as_primitive::<TimestampMillisecondType>().value(row)),
            );
            Ok(())
        }
        other => {
            text(format, out, &format!("<{other}>"));
            Ok(())
        }
    };
}

fn text(format: Format, out: &mut Vec<u8>, s: &str) {
    match format {
        Format::Json => {
            let _ = serde_json::to_writer(&mut *out, s);
        }
        Format::Csv => csv_text(out, s),
    }
}

fn csv_text(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
    };
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("p", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(Float64Array::from(vec![Some(2.5), Some(f64::NAN)])),
                Arc::new(StringArray::from(vec![Some("a,\"b\""), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                Arc::new(TimestampMillisecondArray::from(vec![
                    Some(1_767_225_610_000),
                    Some(1_767_225_610_250),
                ])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn json_lines() {
        let b = batch();
        let mut out = Vec::new();
        Encoder::new(Format::Json, &b.schema()).encode(&b, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":1,\"p\":2.5,\"s\":\"a,\\\"b\\\"\",\"b\":true,\"t\":\"2026-01-01T00:00:10Z\"}\n\
             {\"a\":null,\"p\":null,\"s\":null,\"b\":null,\"t\":\"2026-01-01T00:00:10.250Z\"}\n"
        );
    }

    #[test]
    fn decimals_keep_every_digit_of_their_scale() {
        let d = arrow::array::Decimal128Array::from(vec![Some(1250), Some(-5), None])
            .with_precision_and_scale(38, 3)
            .unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "d",
            d.data_type().clone(),
            true,
        )]));
        let b = RecordBatch::try_new(schema, vec![Arc::new(d)]).unwrap();
        for (format, want) in [
            (
                Format::Json,
                "{\"d\":1.250}\n{\"d\":-0.005}\n{\"d\":null}\n",
            ),
            (Format::Csv, "1.250\n-0.005\n\n"),
        ] {
            let mut out = Vec::new();
            Encoder::new(format, &b.schema()).encode(&b, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn csv_with_header() {
        let b = batch();
        let mut e = Encoder::new(Format::Csv, &b.schema());
        let mut out = e.take_header().unwrap();
        e.encode(&b, &mut out);
        assert!(e.take_header().is_none());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,p,s,b,t\n1,2.5,\"a,\"\"b\"\"\",true,2026-01-01T00:00:10Z\n,,,,2026-01-01T00:00:10.250Z\n"
        );
    }
}
