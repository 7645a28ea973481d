//! Dead letters: input rows the query could not use (too late for every
//! window, no event time), each written with the reason as one JSON line
//! `{"reason": ..., "stream": ..., "event_time": ..., "watermark": ..., "row": {...}}`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow::record_batch::RecordBatch;

use crate::connectors::encode::{Encoder, Format};
use crate::error::ConnectorError;
use crate::types::format_timestamp_ms;

/// Rows rejected by an operator, all for the same reason.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The rows, as the operator received them (the stream's columns).
    pub rows: RecordBatch,
    /// Why, e.g. "too late: ...".
    pub reason: String,
    /// The rows' event times (ms, `None` when NULL).
    pub event_times: Vec<Option<i64>>,
    /// The operator's watermark when they arrived (ms).
    pub watermark: i64,
}

impl DeadLetter {
    /// One JSON line per row.
    pub fn to_json_lines(&self, stream: &str) -> Vec<String> {
        let mut encoded = Vec::new();
        Encoder::new(Format::Json, &self.rows.schema()).encode(&self.rows, &mut encoded);
        let text = String::from_utf8_lossy(&encoded);
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into());
        let time =
            |t: Option<i64>| t.map_or("null".to_string(), |t| quote(&format_timestamp_ms(t)));
        let watermark = if self.watermark == i64::MIN {
            "null".to_string()
        } else {
            time(Some(self.watermark))
        };
        text.lines()
            .zip(&self.event_times)
            .map(|(row, &t)| {
                format!(
                    "{{\"reason\":{},\"stream\":{},\"event_time\":{},\"watermark\":{},\"row\":{}}}",
                    quote(&self.reason),
                    quote(stream),
                    time(t),
                    watermark,
                    row
                )
            })
            .collect()
    }
}

/// `bytes` in standard base64 (RFC 4648, with padding): how a dead letter
/// carries a binary message value.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Where dead letters go.
pub trait DeadLetterSink: Send {
    /// Writes one group of dead letters.
    ///
    /// # Errors
    /// The destination cannot be written.
    fn write(&mut self, letters: &DeadLetter) -> Result<(), ConnectorError>;

    /// Writes dead letters a source made itself (malformed records), one
    /// JSON object per line.
    ///
    /// # Errors
    /// The destination cannot be written.
    fn write_lines(&mut self, lines: &[String]) -> Result<(), ConnectorError>;

    /// Makes what was written durable (called before offsets are committed).
    ///
    /// # Errors
    /// The destination cannot be written.
    fn flush(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Flushes.
    ///
    /// # Errors
    /// The destination cannot be written.
    fn close(&mut self) -> Result<(), ConnectorError>;
}

/// Appends dead letters to a JSON-lines file (`'dead_letter.path'`).
pub struct FileDeadLetters {
    stream: String,
    path: String,
    /// Opened for appending, unbuffered (dead letters are few).
    out: File,
}

impl FileDeadLetters {
    /// Opens (creates or appends to) `path`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(stream: &str, path: &str) -> Result<Self, ConnectorError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| ConnectorError::Io {
                context: format!("cannot open the dead-letter file {path}"),
                source: e,
            })?;
        Ok(Self {
            stream: stream.to_string(),
            path: path.to_string(),
            out: file,
        })
    }
}

impl DeadLetterSink for FileDeadLetters {
    fn write(&mut self, letters: &DeadLetter) -> Result<(), ConnectorError> {
        self.write_lines(&letters.to_json_lines(&self.stream))
    }

    /// Whole lines in one appending write: several queries over one stream
    /// may share its dead-letter file without tearing each other's lines.
    fn write_lines(&mut self, lines: &[String]) -> Result<(), ConnectorError> {
        let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| ConnectorError::Io {
                context: format!("cannot write the dead-letter file {}", self.path),
                source: e,
            })
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.close()
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        self.out.flush().map_err(|e| ConnectorError::Io {
            context: format!("cannot write the dead-letter file {}", self.path),
            source: e,
        })
    }
}

/// Keeps dead letters in memory, as JSON lines (for embedding and tests).
#[derive(Debug, Clone, Default)]
pub struct CollectDeadLetters {
    stream: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl CollectDeadLetters {
    /// A collector labelling lines with `stream`.
    pub fn new(stream: &str) -> Self {
        Self {
            stream: stream.to_string(),
            lines: Arc::default(),
        }
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl DeadLetterSink for CollectDeadLetters {
    fn write(&mut self, letters: &DeadLetter) -> Result<(), ConnectorError> {
        if let Ok(mut l) = self.lines.lock() {
            l.extend(letters.to_json_lines(&self.stream));
        }
        Ok(())
    }

    fn write_lines(&mut self, lines: &[String]) -> Result<(), ConnectorError> {
        if let Ok(mut l) = self.lines.lock() {
            l.extend_from_slice(lines);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// RFC 4648's test vectors, and every byte value.
    #[test]
    fn base64_is_rfc_4648() {
        for (raw, b64) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(raw.as_bytes()), b64);
        }
        assert_eq!(super::base64(&[0, 0xff, 0xfe]), "AP/+");
    }
}
