//! JSON lines → Arrow: one decode per chunk of lines with arrow-json's tape
//! decoder; only when a chunk fails is it decoded line by line, to find the
//! bad lines and skip them (counted) or fail with their line number.

use arrow::array::AsArray;
use arrow::datatypes::SchemaRef;
use arrow::json::ReaderBuilder;
use arrow::json::reader::Decoder;
use arrow::record_batch::RecordBatch;

use crate::catalog::Options;
use crate::connectors::json_types::JsonTypes;
use crate::error::ConnectorError;

/// What to do with a record that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Count it and go on.
    Skip,
    /// Stop the query with the record's position and the reason.
    Fail,
    /// Count it and write it, with the reason, to `'dead_letter.path'`.
    DeadLetter,
}

impl OnError {
    /// Reads `'format.on_error'` (`fail` by default).
    ///
    /// # Errors
    /// A value other than `fail`, `skip` or `dead_letter`, or
    /// `dead_letter` without `'dead_letter.path'`.
    pub fn from_options(o: &Options) -> Result<Self, ConnectorError> {
        let choice = o.choice_or("format.on_error", &["fail", "skip", "dead_letter"], "fail")?;
        Ok(match choice {
            "skip" => OnError::Skip,
            "dead_letter" if o.get("dead_letter.path").is_none() => {
                return Err(o.error(
                    "'format.on_error' = 'dead_letter' needs 'dead_letter.path', the JSON-lines file that receives malformed records",
                ));
            }
            "dead_letter" => OnError::DeadLetter,
            _ => OnError::Fail,
        })
    }
}

/// The rows of one decoded chunk.
#[derive(Debug)]
pub struct Decoded {
    /// Rows of the good lines.
    pub batch: RecordBatch,
    /// Malformed lines skipped (always 0 under [`OnError::Fail`]).
    pub skipped: u64,
    /// The skipped lines themselves, under [`OnError::DeadLetter`] only.
    pub malformed: Vec<MalformedLine>,
}

/// A record a file source could not read, for its dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedLine {
    /// Its line in the file (1-based).
    pub line: u64,
    /// Why.
    pub reason: String,
    /// Its text, without the line end.
    pub text: Vec<u8>,
}

impl MalformedLine {
    /// The dead letter of this record of stream `stream`, read from `path`.
    pub fn to_json_line(&self, stream: &str, path: &str) -> String {
        serde_json::json!({
            "reason": format!("malformed record: {}", self.reason),
            "stream": stream,
            "path": path,
            "line": self.line,
            "value": String::from_utf8_lossy(&self.text),
        })
        .to_string()
    }
}

/// Decodes newline-separated JSON objects into batches of a fixed schema.
pub struct JsonDecoder {
    schema: SchemaRef,
    source_name: String,
    on_error: OnError,
    types: JsonTypes,
    decoder: Decoder,
}

/// Rows a chunk decoder holds before it flushes (it reserves room for them).
const MAX_ROWS: usize = 1 << 20;

pub(crate) fn new_decoder(
    schema: &SchemaRef,
    source_name: &str,
    rows: usize,
    types: JsonTypes,
) -> Result<Decoder, ConnectorError> {
    let builder = ReaderBuilder::new(schema.clone()).with_batch_size(rows);
    match types.factory() {
        Some(f) => builder.with_decoder_factory(f),
        None => builder,
    }
    .build_decoder()
    .map_err(|e| ConnectorError::Arrow {
        context: format!("{source_name}: JSON decoder"),
        source: e,
    })
}

/// Whole JSON lines to decode; the first is line `first_line` (1-based).
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub bytes: Vec<u8>,
    pub first_line: u64,
    /// The length of its longest line.
    pub longest_line: usize,
    /// How many of its lines are not blank (one record each).
    pub records: u64,
    /// How many lines end in it (its newlines).
    pub newlines: u64,
    /// Where it starts and ends in its file (bytes; a file source's
    /// position, see `FilePosition`).
    pub span: (u64, u64),
}

impl crate::connectors::decode_pool::Decode for JsonDecoder {
    type Input = Chunk;
    type Output = Decoded;

    fn decode(&mut self, chunk: &Chunk) -> Result<Decoded, ConnectorError> {
        self.decode_checked(chunk)
    }
}

impl JsonDecoder {
    /// A decoder for `schema`; `source_name` (a path, a topic) appears in messages.
    ///
    /// # Errors
    /// A schema arrow-json cannot decode into.
    pub fn new(
        schema: SchemaRef,
        source_name: impl Into<String>,
        on_error: OnError,
    ) -> Result<Self, ConnectorError> {
        let source_name = source_name.into();
        let types = JsonTypes::default();
        let decoder = new_decoder(&schema, &source_name, MAX_ROWS, types)?;
        Ok(Self {
            schema,
            source_name,
            on_error,
            types,
            decoder,
        })
    }

    /// The decoder with the type rule `types` (strict by default).
    ///
    /// # Errors
    /// A schema arrow-json cannot decode into.
    pub fn with_types(mut self, types: JsonTypes) -> Result<Self, ConnectorError> {
        self.types = types;
        self.decoder = self.fresh(MAX_ROWS)?;
        Ok(self)
    }

    fn fresh(&self, rows: usize) -> Result<Decoder, ConnectorError> {
        new_decoder(&self.schema, &self.source_name, rows, self.types)
    }

    /// Decodes `chunk`, which holds whole lines; its first line is line
    /// `first_line` (1-based) of the input.
    ///
    /// # Errors
    /// [`ConnectorError::Malformed`] for the first bad line under [`OnError::Fail`].
    #[cfg(test)]
    pub fn decode(&mut self, chunk: &[u8], first_line: u64) -> Result<Decoded, ConnectorError> {
        self.decode_checked(&Chunk::of(chunk.to_vec(), first_line))
    }

    /// [`JsonDecoder::decode`] of a chunk whose longest line and record
    /// count are known.
    fn decode_checked(&mut self, chunk: &Chunk) -> Result<Decoded, ConnectorError> {
        let (bytes, first_line) = (&chunk.bytes[..], chunk.first_line);
        if chunk.longest_line > 2 * MAX_DEPTH && any_line_too_deep(bytes) {
            return self.decode_lines(bytes, first_line);
        }
        match decode_with(&mut self.decoder, &self.schema, bytes, MAX_ROWS) {
            // one record a line: `{..}{..}` on one line is not JSON lines
            Ok(batch)
                if batch.num_rows() as u64 == chunk.records
                    && timestamp_out_of_range(&batch).is_none() =>
            {
                Ok(Decoded {
                    batch,
                    skipped: 0,
                    malformed: Vec::new(),
                })
            }
            Ok(_) => self.decode_lines(bytes, first_line),
            Err(_) => {
                // the decoder may hold half a record: start afresh
                self.decoder = self.fresh(MAX_ROWS)?;
                self.decode_lines(bytes, first_line)
            }
        }
    }

    /// The slow path: each line on its own, to find the bad ones.
    fn decode_lines(&mut self, chunk: &[u8], first_line: u64) -> Result<Decoded, ConnectorError> {
        let mut good: Vec<u8> = Vec::with_capacity(chunk.len());
        let mut skipped = 0;
        let mut malformed = Vec::new();
        // a one-row decoder to test lines: cheap to rebuild after a bad one
        let mut probe = self.fresh(1)?;
        for (i, line) in chunk.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let reason = match too_deep(line) {
                Some(deep) => Some(readable_reason(&deep, line)),
                None => match decode_with(&mut probe, &self.schema, line, 1) {
                    Ok(b) if b.num_rows() > 1 => Some(readable_reason(
                        &format!(
                            "the line holds {} JSON records, not one (write one object a line)",
                            b.num_rows()
                        ),
                        line,
                    )),
                    Ok(b) => timestamp_out_of_range(&b).map(|why| readable_reason(&why, line)),
                    Err(e) => {
                        probe = self.fresh(1)?;
                        Some(readable_reason(&e.to_string(), line))
                    }
                },
            };
            match reason {
                None => {
                    good.extend_from_slice(line);
                    good.push(b'\n');
                }
                Some(reason) => {
                    let line_no = first_line + i as u64;
                    match self.on_error {
                        OnError::Fail => {
                            return Err(ConnectorError::Malformed {
                                source_name: self.source_name.clone(),
                                line: line_no,
                                reason,
                            });
                        }
                        OnError::DeadLetter => malformed.push(MalformedLine {
                            line: line_no,
                            reason,
                            text: line.strip_suffix(b"\r").unwrap_or(line).to_vec(),
                        }),
                        OnError::Skip => {}
                    }
                    skipped += 1;
                }
            }
        }
        let batch = decode_with(&mut self.decoder, &self.schema, &good, MAX_ROWS).map_err(|e| {
            ConnectorError::Arrow {
                context: format!("{}: re-decoding the valid lines", self.source_name),
                source: e,
            }
        })?;
        Ok(Decoded {
            batch,
            skipped,
            malformed,
        })
    }
}

/// Decodes every record of `chunk` with `decoder` (which flushes every `max_rows`).
pub(crate) fn decode_with(
    decoder: &mut Decoder,
    schema: &SchemaRef,
    chunk: &[u8],
    max_rows: usize,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut batches = Vec::new();
    let mut pos = 0;
    while pos < chunk.len() {
        let n = decoder.decode(&chunk[pos..])?;
        pos += n;
        if n == 0 || decoder.len() >= max_rows {
            if let Some(b) = decoder.flush()? {
                batches.push(b);
            }
            if n == 0 {
                break;
            }
        }
    }
    if let Some(b) = decoder.flush()? {
        batches.push(b);
    }
    if !decoder.has_partial_record() {
        match batches.len() {
            0 => Ok(RecordBatch::new_empty(schema.clone())),
            1 => Ok(batches.remove(0)),
            _ => arrow::compute::concat_batches(schema, &batches),
        }
    } else {
        Err(arrow::error::ArrowError::JsonError(
            "the record is not complete".into(),
        ))
    }
}

/// Why a decoded batch holds a TIMESTAMP outside the supported range (the
/// first such column), if it does. Window bounds and interval arithmetic
/// stay far from overflowing inside the range.
pub(crate) fn timestamp_out_of_range(batch: &RecordBatch) -> Option<String> {
    use crate::types::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
    use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| matches!(f.data_type(), DataType::Timestamp(TimeUnit::Millisecond, _)))
        .find_map(|(f, c)| {
            let ts = c.as_primitive_opt::<TimestampMillisecondType>()?;
            let (lo, hi) = (arrow::compute::min(ts)?, arrow::compute::max(ts)?);
            let bad = if lo < MIN_TIMESTAMP_MS { lo } else { hi };
            (lo < MIN_TIMESTAMP_MS || hi > MAX_TIMESTAMP_MS).then(|| {
                format!(
                    "column '{}' holds {bad} ms, outside the supported TIMESTAMP range (years 0000 to 9999)",
                    f.name()
                )
            })
        })
}

/// The deepest a record may nest objects and arrays. Declared columns hold
/// scalars, so a deeper value is malformed either way; the limit keeps it
/// from arrow-json, which renders a value it cannot convert by recursion
/// (a line nested 40,000 deep would overflow the decoding thread's stack).
pub const MAX_DEPTH: usize = 1000;

/// Why a record is too deeply nested, if it is (see [`MAX_DEPTH`]).
pub(crate) fn too_deep(record: &[u8]) -> Option<String> {
    // nesting needs two bytes a level; then as many brackets
    if record.len() <= 2 * MAX_DEPTH {
        return None;
    }
    memchr::memchr2_iter(b'{', b'[', record).nth(MAX_DEPTH)?;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in record {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(format!(
                        "the record nests objects or arrays deeper than {MAX_DEPTH} levels"
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Whether a line of `chunk` nests deeper than [`MAX_DEPTH`]: only lines
/// long enough to (two bytes a level) are looked at.
fn any_line_too_deep(chunk: &[u8]) -> bool {
    chunk
        .split(|&b| b == b'\n')
        .any(|line| too_deep(line).is_some())
}

impl Chunk {
    /// `bytes` (whole lines, the first being line `first_line`) as a chunk.
    /// One pass over the newlines learns the longest line (so the decoder
    /// skips the nesting check when no line is long enough to need it) and
    /// the records (non-blank lines: a line starts with `{` unless it is
    /// blank or indented, so the test rarely looks past one byte).
    pub(crate) fn of(bytes: Vec<u8>, first_line: u64) -> Chunk {
        let (mut start, mut longest, mut records, mut newlines) = (0usize, 0usize, 0u64, 0u64);
        let mut line = |start: usize, end: usize| {
            longest = longest.max(end - start);
            records += u64::from(!bytes[start..end].iter().all(u8::is_ascii_whitespace));
        };
        for nl in memchr::memchr_iter(b'\n', &bytes) {
            line(start, nl);
            start = nl + 1;
            newlines += 1;
        }
        line(start, bytes.len());
        Chunk {
            bytes,
            first_line,
            longest_line: longest,
            records,
            newlines,
            span: (0, 0),
        }
    }
}

/// Turns arrow-json's message into one a user can act on.
pub(crate) fn readable_reason(arrow_message: &str, line: &[u8]) -> String {
    let msg = arrow_message
        .trim_start_matches("Json error: ")
        .trim_start_matches("Parser error: ");
    // the type rules' messages name the column themselves
    let msg = match msg.split_once("': column '") {
        Some((field, _)) if field.starts_with("whilst decoding field '") => &msg[field.len() + 3..],
        _ => msg,
    };
    format!("{} (line: {})", printable(msg), shown(line))
}

/// The start of a record for a message: its first 80 characters, with
/// control characters escaped (a data file's escape sequences must not
/// reach the operator's terminal).
pub(crate) fn shown(record: &[u8]) -> String {
    let text = String::from_utf8_lossy(record);
    let start: String = text.chars().take(80).collect();
    let ellipsis = if text.chars().count() > 80 { "..." } else { "" };
    format!("{}{ellipsis}", printable(&start))
}

/// `text` with control characters written as escapes (`\u{1b}`).
pub(crate) fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMillisecondType};
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]))
    }

    #[test]
    fn decodes_types_nulls_and_both_timestamp_forms() {
        let mut d = JsonDecoder::new(schema(), "in.jsonl", OnError::Fail).unwrap();
        let input = b"{\"a\":1,\"s\":\"x\",\"t\":1767225610000}\n\n{\"a\":null,\"t\":\"2026-01-01T00:00:10.250+01:00\"}\n{\"t\":\"2026-01-01 00:00:10\",\"extra\":[1]}\n";
        let out = d.decode(input, 1).unwrap();
        assert_eq!(out.batch.num_rows(), 3);
        let a = out
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(a.iter().collect::<Vec<_>>(), [Some(1), None, None]);
        let t = out
            .batch
            .column(2)
            .as_primitive::<TimestampMillisecondType>();
        assert_eq!(
            t.values().to_vec(),
            [1_767_225_610_000, 1_767_222_010_250, 1_767_225_610_000]
        );
    }

    #[test]
    fn a_line_nested_beyond_the_limit_is_malformed_not_fatal() {
        let deep = |d: usize| format!("{{\"a\": {}1{}}}", "{\"x\":".repeat(d), "}".repeat(d));
        let input = format!("{{\"a\":1}}\n{}\n{{\"a\":3}}\n", deep(100_000));
        let mut d = JsonDecoder::new(schema(), "in.jsonl", OnError::Skip).unwrap();
        let out = d.decode(input.as_bytes(), 1).unwrap();
        assert_eq!((out.batch.num_rows(), out.skipped), (2, 1));
        let mut d = JsonDecoder::new(schema(), "in.jsonl", OnError::Fail).unwrap();
        let e = d.decode(input.as_bytes(), 1).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("deeper than 1000"),
            "{e}"
        );
        // brackets inside strings do not nest; nesting up to the limit decodes
        let quoted = format!("{{\"s\": \"{}\", \"a\": 5}}\n", "[{".repeat(5000));
        assert_eq!(d.decode(quoted.as_bytes(), 1).unwrap().batch.num_rows(), 1);
        let ok = format!(
            "{{\"a\": 6, \"extra\": {}1{}}}\n",
            "[".repeat(999),
            "]".repeat(999)
        );
        assert_eq!(d.decode(ok.as_bytes(), 1).unwrap().batch.num_rows(), 1);
    }

    #[test]
    fn control_characters_in_a_bad_line_are_escaped_in_the_message() {
        let mut d = JsonDecoder::new(schema(), "in.jsonl", OnError::Fail).unwrap();
        let e = d
            .decode(
                b"{\"s\": \"\x1b[2J\x1b]0;pwned\x07\", \"a\": \"x\x1b[31m\"}\n",
                1,
            )
            .unwrap_err()
            .to_string();
        assert!(!e.chars().any(|c| c.is_control() && c != '\n'), "{e:?}");
        assert!(e.contains("\\u{1b}[2J"), "{e}");
    }

    #[test]
    fn skip_counts_bad_lines_and_keeps_the_rest() {
        let mut d = JsonDecoder::new(schema(), "in.jsonl", OnError::Skip).unwrap();
        let out = d
            .decode(b"{\"a\":1}\n{\"a\":\n{\"a\":\"x\"}\n{\"a\":4}\n", 1)
            .unwrap();
        assert_eq!((out.batch.num_rows(), out.skipped), (2, 2));
        assert!(out.malformed.is_empty());
    }

    #[test]
    fn dead_letter_keeps_each_bad_line_with_its_number_and_reason() {
        let mut d = JsonDecoder::new(schema(), "in.jsonl", OnError::DeadLetter).unwrap();
        let out = d
            .decode(b"{\"a\":1}\n{\"a\":\r\n{\"a\":\"x\"}\n{\"a\":4}\n", 7)
            .unwrap();
        assert_eq!((out.batch.num_rows(), out.skipped), (2, 2));
        let lines: Vec<(u64, &[u8])> = out
            .malformed
            .iter()
            .map(|m| (m.line, &m.text[..]))
            .collect();
        assert_eq!(lines, [(8, &b"{\"a\":"[..]), (9, &b"{\"a\":\"x\"}"[..])]);
        let letter: serde_json::Value =
            serde_json::from_str(&out.malformed[1].to_json_line("bids", "in.jsonl")).unwrap();
        assert_eq!(letter["stream"], "bids");
        assert_eq!(letter["path"], "in.jsonl");
        assert_eq!(letter["line"], 9);
        assert_eq!(letter["value"], "{\"a\":\"x\"}");
        let reason = letter["reason"].as_str().unwrap();
        assert!(reason.starts_with("malformed record: "), "{reason}");
    }

    #[test]
    fn fail_names_the_line() {
        let mut d = JsonDecoder::new(schema(), "in.jsonl", OnError::Fail).unwrap();
        let e = d
            .decode(b"{\"a\":1}\n\n{\"a\":\"x\"}\n", 10)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("in.jsonl: malformed record at line 12: "),
            "{e}"
        );
        assert!(e.contains("(line: {\"a\":\"x\"})"), "{e}");
    }
}
