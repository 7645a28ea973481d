//! `format = 'csv'` for file sources: comma-separated values (RFC 4180
//! quoting: `"a, b"`, `""` for a quote inside), one record a line, fields
//! taken by the declared columns' order or, with `'csv.header' = 'true'`,
//! by the names of the file's first line. An empty field is NULL (or the
//! `'csv.null-literal'`). A record with a value its column's type cannot
//! hold, or too few fields, follows `'format.on_error'`, as a JSON line.
//!
//! Chunks of whole lines are decoded on the source's decoder threads, so a
//! quoted field cannot hold a line break.

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::catalog::{Options, StreamDef};
use crate::connectors::json::{Chunk, Decoded, MalformedLine, OnError, printable};
use crate::error::ConnectorError;

/// The options a CSV file source takes.
pub(crate) const KEYS: &[&str] = &[
    "csv.header",
    "csv.delimiter",
    "csv.quote",
    "csv.null-literal",
];

/// How to read the fields of a CSV stream.
#[derive(Debug, Clone)]
pub(crate) struct CsvFormat {
    delimiter: u8,
    quote: u8,
    header: bool,
    null: String,
}

impl CsvFormat {
    /// Reads the `csv.*` options.
    ///
    /// # Errors
    /// A delimiter or quote that is not one ASCII character.
    pub fn from_options(o: &Options) -> Result<Self, ConnectorError> {
        let one = |key: &str, default: u8| -> Result<u8, ConnectorError> {
            match o.get(key) {
                None => Ok(default),
                Some("\\t") => Ok(b'\t'),
                Some(v) if v.len() == 1 && v.is_ascii() => Ok(v.as_bytes()[0]),
                Some(v) => Err(o.error(format!(
                    "'{key}' = '{v}' must be one ASCII character (write '\\t' for a tab)"
                ))),
            }
        };
        Ok(Self {
            delimiter: one("csv.delimiter", b',')?,
            quote: one("csv.quote", b'"')?,
            header: o.bool_or("csv.header", false)?,
            null: o.get("csv.null-literal").unwrap_or_default().to_string(),
        })
    }

    fn reader<'a>(&self, bytes: &'a [u8]) -> csv::Reader<&'a [u8]> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .quote(self.quote)
            .from_reader(bytes)
    }

    /// Each column of `schema` (the decoded ones) as its field's index in
    /// a record: by the declared columns' order, or by the header's names
    /// (`header`: the file's first line).
    ///
    /// # Errors
    /// A declared column the header does not name.
    pub fn columns(
        &self,
        def: &StreamDef,
        schema: &SchemaRef,
        header: Option<&[u8]>,
    ) -> Result<Vec<usize>, ConnectorError> {
        let names: Vec<String> = match (self.header, header) {
            (true, Some(line)) => self
                .reader(line)
                .byte_records()
                .next()
                .and_then(Result::ok)
                .map(|r| {
                    r.iter()
                        .map(|f| String::from_utf8_lossy(f).trim().to_string())
                        .collect()
                })
                .unwrap_or_default(),
            (true, None) => Vec::new(),
            (false, _) => def
                .schema
                .fields()
                .iter()
                .filter(|f| !def.is_system_column(f.name()))
                .map(|f| f.name().clone())
                .collect(),
        };
        schema
            .fields()
            .iter()
            .map(|f| {
                names
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(f.name()))
                    .ok_or_else(|| {
                        def.options.error(format!(
                            "column '{}' is not in the header of the CSV file (it names: {}); name it there, or set 'csv.header' = 'false' to take the fields in the declared order",
                            f.name(),
                            names.join(", ")
                        ))
                    })
            })
            .collect()
    }
}

/// Decodes chunks of CSV lines into batches of a fixed schema.
pub(crate) struct CsvDecoder {
    schema: SchemaRef,
    source_name: String,
    on_error: OnError,
    format: CsvFormat,
    /// Per column, its field's index in a record.
    fields: Vec<usize>,
}

impl CsvDecoder {
    pub fn new(
        schema: SchemaRef,
        source_name: String,
        on_error: OnError,
        format: CsvFormat,
        fields: Vec<usize>,
    ) -> Self {
        Self {
            schema,
            source_name,
            on_error,
            format,
            fields,
        }
    }

    /// The rows of `chunk`'s records.
    ///
    /// # Errors
    /// The first bad record under `'format.on_error' = 'fail'`.
    pub fn decode(&mut self, chunk: &Chunk) -> Result<Decoded, ConnectorError> {
        let mut builders: Vec<Box<dyn ArrayBuilder>> = self
            .schema
            .fields()
            .iter()
            .map(|f| arrow::array::make_builder(f.data_type(), 1024))
            .collect();
        let mut rejects = (0, Vec::new());
        let mut record = csv::ByteRecord::new();
        let mut reader = self.format.reader(&chunk.bytes);
        let mut values: Vec<Option<Value>> = Vec::with_capacity(self.fields.len());
        let mut rows = 0;
        loop {
            let before = reader.position().clone();
            let read = reader.read_byte_record(&mut record);
            // where the record starts
            let start = match (&read, record.position()) {
                (Ok(true), Some(p)) => p.clone(),
                _ => before,
            };
            let (mut at, mut line) = (start.byte() as usize, start.line());
            if chunk.bytes.get(at) == Some(&b'\n') {
                // the LF of the CRLF before: not yet counted
                (at, line) = (at + 1, line + 1);
            }
            let line = chunk.first_line + line.saturating_sub(1);
            let raw = raw_record(&chunk.bytes, at, reader.position().byte() as usize);
            match read {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    self.bad(line, &e.to_string(), &[], raw, &mut rejects)?;
                    continue;
                }
            }
            // the header line, and blank lines, hold no row
            let blank = record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace);
            if blank || (self.format.header && line == 1) {
                continue;
            }
            values.clear();
            let mut reason = None;
            for (c, &f) in self.fields.iter().enumerate() {
                let Some(raw) = record.get(f) else {
                    reason = Some(format!(
                        "the record has {} fields, column '{}' is field {}",
                        record.len(),
                        self.schema.field(c).name(),
                        f + 1
                    ));
                    break;
                };
                match parse(raw, self.schema.field(c).data_type(), &self.format.null) {
                    Ok(v) => values.push(v),
                    Err(why) => {
                        reason = Some(format!("column '{}': {why}", self.schema.field(c).name()));
                        break;
                    }
                }
            }
            match reason {
                Some(why) => {
                    let text: Vec<&[u8]> = record.iter().collect();
                    self.bad(line, &why, &text, raw, &mut rejects)?;
                }
                None => {
                    for (b, v) in builders.iter_mut().zip(values.drain(..)) {
                        append(b.as_mut(), v);
                    }
                    rows += 1;
                }
            }
        }
        let columns: Vec<ArrayRef> = builders.iter_mut().map(|b| b.finish()).collect();
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| ConnectorError::Arrow {
            context: format!("{}: CSV rows", self.source_name),
            source: e,
        })?;
        let (skipped, malformed) = rejects;
        Ok(Decoded {
            batch,
            skipped,
            malformed,
        })
    }

    /// A bad record: counted under `skip`, also kept for its dead letter
    /// under `dead_letter`, the query's error under `fail`.
    fn bad(
        &self,
        line: u64,
        why: &str,
        fields: &[&[u8]],
        raw: &[u8],
        (skipped, malformed): &mut (u64, Vec<MalformedLine>),
    ) -> Result<(), ConnectorError> {
        match self.on_error {
            OnError::Fail => {}
            OnError::Skip => {
                *skipped += 1;
                return Ok(());
            }
            OnError::DeadLetter => {
                *skipped += 1;
                malformed.push(MalformedLine {
                    line,
                    reason: why.to_string(),
                    text: raw.to_vec(),
                });
                return Ok(());
            }
        }
        let shown: Vec<String> = fields
            .iter()
            .map(|f| printable(&String::from_utf8_lossy(f)))
            .collect();
        Err(ConnectorError::Malformed {
            source_name: self.source_name.clone(),
            line,
            reason: if shown.is_empty() {
                why.to_string()
            } else {
                format!("{why} in the record [{}]", shown.join(", "))
            },
        })
    }
}

/// The bytes of the record between `start` and `end`, without its line end.
fn raw_record(bytes: &[u8], start: usize, end: usize) -> &[u8] {
    let raw = bytes.get(start..end.min(bytes.len())).unwrap_or_default();
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

impl crate::connectors::decode_pool::Decode for CsvDecoder {
    type Input = Chunk;
    type Output = Decoded;

    fn decode(&mut self, chunk: &Chunk) -> Result<Decoded, ConnectorError> {
        CsvDecoder::decode(self, chunk)
    }
}

/// A field's value.
enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Decimal(i128),
    Text(String),
}

/// `raw` as a value of `ty`; `None` for NULL (the null literal).
fn parse(raw: &[u8], ty: &DataType, null: &str) -> Result<Option<Value>, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_string())?;
    if text == null || (!matches!(ty, DataType::Utf8) && text.trim().is_empty()) {
        return Ok(None);
    }
    let bad = |what: &str| format!("'{}' is not {what}", printable(text));
    let t = text.trim();
    Ok(Some(match ty {
        DataType::Int64 | DataType::Int32 => {
            let v = t.parse::<i64>().map_err(|_| bad("an integer"))?;
            if *ty == DataType::Int32 && i32::try_from(v).is_err() {
                return Err(bad("an INT (32 bits)"));
            }
            Value::Int(v)
        }
        DataType::Float64 => Value::Float(t.parse::<f64>().map_err(|_| bad("a number"))?),
        DataType::Decimal128(p, s) => Value::Decimal(
            crate::types::decimal::parse(t, *p, *s as u8).map_err(|e| match e {
                crate::types::decimal::DecimalTextError::NotANumber(_) => bad("a number"),
                overflow => format!("{overflow}: too many digits before the point"),
            })?,
        ),
        DataType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => Value::Bool(true),
            "false" | "f" | "0" => Value::Bool(false),
            _ => return Err(bad("a BOOLEAN (true or false)")),
        },
        DataType::Timestamp(TimeUnit::Millisecond, _) => Value::Int(match t.parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => crate::exec::expr::parse_timestamp_ms(t).ok_or_else(|| {
                bad("a TIMESTAMP (2026-01-01T00:00:03Z, 2026-01-01 00:00:03.250 or epoch milliseconds)")
            })?,
        }),
        _ => Value::Text(text.to_string()),
    }))
}

fn append(b: &mut dyn ArrayBuilder, v: Option<Value>) {
    let any = b.as_any_mut();
    if let Some(b) = any.downcast_mut::<Int64Builder>() {
        b.append_option(match v {
            Some(Value::Int(i)) => Some(i),
            _ => None,
        });
    } else if let Some(b) = any.downcast_mut::<Int32Builder>() {
        b.append_option(match v {
            Some(Value::Int(i)) => Some(i as i32),
            _ => None,
        });
    } else if let Some(b) = any.downcast_mut::<Float64Builder>() {
        b.append_option(match v {
            Some(Value::Float(f)) => Some(f),
            _ => None,
        });
    } else if let Some(b) = any.downcast_mut::<arrow::array::Decimal128Builder>() {
        b.append_option(match v {
            Some(Value::Decimal(d)) => Some(d),
            _ => None,
        });
    } else if let Some(b) = any.downcast_mut::<BooleanBuilder>() {
        b.append_option(match v {
            Some(Value::Bool(x)) => Some(x),
            _ => None,
        });
    } else if let Some(b) = any.downcast_mut::<TimestampMillisecondBuilder>() {
        b.append_option(match v {
            Some(Value::Int(i)) => Some(i),
            _ => None,
        });
    } else if let Some(b) = any.downcast_mut::<StringBuilder>() {
        b.append_option(match v {
            Some(Value::Text(s)) => Some(s),
            _ => None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Field, Int64Type, Schema, TimestampMillisecondType};
    use std::sync::Arc;

    fn decoder(on_error: OnError, header: bool) -> CsvDecoder {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let format = CsvFormat {
            delimiter: b',',
            quote: b'"',
            header,
            null: String::new(),
        };
        CsvDecoder::new(schema, "s".into(), on_error, format, vec![0, 1, 2])
    }

    #[test]
    fn quotes_nulls_timestamps_and_the_header_line() {
        let text = "id,name,t\n1,\"a, b\",2026-01-01T00:00:03Z\n2,\"say \"\"hi\"\"\",1767225605000\n\n3,,\n";
        let d = decoder(OnError::Fail, true)
            .decode(&Chunk::of(text.as_bytes().to_vec(), 1))
            .unwrap();
        let b = d.batch;
        assert_eq!(b.num_rows(), 3);
        let ids = b.column(0).as_primitive::<Int64Type>();
        assert_eq!(ids.values(), &[1, 2, 3]);
        let names = b.column(1).as_string::<i32>();
        assert_eq!(names.value(0), "a, b");
        assert_eq!(names.value(1), "say \"hi\"");
        assert!(names.is_null(2));
        let t = b.column(2).as_primitive::<TimestampMillisecondType>();
        assert_eq!(t.value(0), 1_767_225_603_000);
        assert_eq!(t.value(1), 1_767_225_605_000);
        assert!(t.is_null(2));
    }

    #[test]
    fn crlf_lines_count_once_and_the_header_is_only_the_first() {
        let text = "id,name,t\r\n1,a,\r\n2,b,\r\nx,c,\r\n";
        let err = decoder(OnError::Fail, true)
            .decode(&Chunk::of(text.as_bytes().to_vec(), 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4"), "{err}");
        let d = decoder(OnError::Skip, true)
            .decode(&Chunk::of(text.as_bytes().to_vec(), 1))
            .unwrap();
        let ids = d.batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(ids.values(), &[1, 2]);
    }

    #[test]
    fn a_bad_record_fails_with_its_line_or_is_skipped() {
        let text = "1,a,2026-01-01T00:00:03Z\nx,b,2026-01-01T00:00:04Z\n3,c\n4,d,5\n";
        let err = decoder(OnError::Fail, false)
            .decode(&Chunk::of(text.as_bytes().to_vec(), 10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 11"), "{err}");
        assert!(err.contains("column 'id': 'x' is not an integer"), "{err}");
        let d = decoder(OnError::Skip, false)
            .decode(&Chunk::of(text.as_bytes().to_vec(), 10))
            .unwrap();
        // the short record and the bad id are skipped
        assert_eq!((d.batch.num_rows(), d.skipped), (2, 2));
        assert!(d.malformed.is_empty());
        // dead letters keep each record's line, reason and text
        let d = decoder(OnError::DeadLetter, false)
            .decode(&Chunk::of(text.replace('\n', "\r\n").into_bytes(), 10))
            .unwrap();
        assert_eq!((d.batch.num_rows(), d.skipped), (2, 2));
        let got: Vec<(u64, &str, &[u8])> = d
            .malformed
            .iter()
            .map(|m| (m.line, m.reason.as_str(), &m.text[..]))
            .collect();
        assert_eq!(
            got,
            [
                (
                    11,
                    "column 'id': 'x' is not an integer",
                    &b"x,b,2026-01-01T00:00:04Z"[..]
                ),
                (
                    12,
                    "the record has 2 fields, column 't' is field 3",
                    &b"3,c"[..]
                ),
            ]
        );
    }

    #[test]
    fn decimals_are_exact_and_too_many_digits_are_malformed() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "x",
            DataType::Decimal128(5, 2),
            true,
        )]));
        let format = CsvFormat {
            delimiter: b',',
            quote: b'"',
            header: false,
            null: String::new(),
        };
        let mut d = CsvDecoder::new(schema, "s".into(), OnError::Fail, format, vec![0]);
        let ok = d
            .decode(&Chunk::of(b"1.005\n-0.5\n\n 7 \n".to_vec(), 1))
            .unwrap();
        let x = ok
            .batch
            .column(0)
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(
            x.iter().collect::<Vec<_>>(),
            vec![Some(101), Some(-50), Some(700)]
        );
        let err = d
            .decode(&Chunk::of(b"1234.5\n".to_vec(), 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1234.5 does not fit DECIMAL(5, 2)"), "{err}");
    }
}
