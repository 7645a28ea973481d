//! The repartition hop of a query run by several processes (docs/scale-out.md):
//! stage 1 (source → watermarks → stateless operators) writes its rows to a
//! repartition topic, each row to the partition its key group belongs to
//! (the in-process exchange's own hash, so a key's state lives in one
//! partition's task), and stage 2 (window aggregation → sink) reads them.
//! Event time crosses the hop as *watermark records*: each stage-1 writer
//! writes its watermark, with the source partitions it reads, to every
//! repartition partition; a reader takes a source partition's watermark as
//! the smallest it has read from every repartition partition it consumes,
//! and the watermark as the smallest over all the source's partitions, so a
//! row written before a watermark record is always read before that record
//! can pass it.
//!
//! A record's value is one tag byte and a payload: `R` and an Arrow IPC
//! stream (a schema and one batch), or `W` and JSON
//! `{"from": [[topic, partition], ...], "watermark": ms}`.

mod marks;
pub mod reader;
pub mod writer;

use std::io::Cursor;

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

use crate::error::ConnectorError;

/// A repartition topic: its name and partition count (fixed at creation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepartitionTopic {
    /// `eddy.<query>.repartition` unless given.
    pub name: String,
    /// Partitions; a key group's rows go to partition
    /// `exchange::worker_of(group, partitions)`.
    pub partitions: i32,
}

/// One record of a repartition topic.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Rows of the stage-2 input schema.
    Rows(RecordBatch),
    /// The watermark of the writer reading source partitions `from`.
    Watermark {
        /// (topic, partition) of the source.
        from: Vec<(String, i32)>,
        /// Event time (ms) all later rows of those partitions are at or after.
        watermark: i64,
        /// Those partitions have had no input for the source's
        /// `idle_timeout` (their watermark moves on with the wall clock).
        idle: bool,
    },
}

fn arrow_error(context: &str) -> impl FnOnce(arrow::error::ArrowError) -> ConnectorError + '_ {
    move |source| ConnectorError::Arrow {
        context: context.to_string(),
        source,
    }
}

/// The value of a rows record.
///
/// # Errors
/// The batch cannot be encoded.
pub fn encode_rows(batch: &RecordBatch) -> Result<Vec<u8>, ConnectorError> {
    let mut out = vec![b'R'];
    let mut w = StreamWriter::try_new(&mut out, &batch.schema())
        .map_err(arrow_error("encoding a repartition record"))?;
    w.write(batch)
        .map_err(arrow_error("encoding a repartition record"))?;
    w.finish()
        .map_err(arrow_error("encoding a repartition record"))?;
    drop(w);
    Ok(out)
}

/// The value of a watermark record.
pub fn encode_watermark(from: &[(String, i32)], watermark: i64, idle: bool) -> Vec<u8> {
    let mut out = vec![b'W'];
    let body = match idle {
        true => serde_json::json!({ "from": from, "watermark": watermark, "idle": true }),
        false => serde_json::json!({ "from": from, "watermark": watermark }),
    };
    out.extend_from_slice(body.to_string().as_bytes());
    out
}

/// Reads a record's value (from `topic`, `partition`, `offset`, for messages).
///
/// # Errors
/// A value no stage-1 writer wrote: the topic is not a repartition topic,
/// or another program wrote to it.
pub fn decode(
    value: &[u8],
    (topic, partition, offset): (&str, i32, i64),
) -> Result<Record, ConnectorError> {
    let bad = |reason: String| ConnectorError::MalformedMessage {
        topic: topic.to_string(),
        partition,
        offset,
        reason: format!("{reason} (a repartition topic holds only what Eddy's stage 1 writes)"),
    };
    match value.split_first() {
        Some((b'R', ipc)) => {
            let reader = StreamReader::try_new(Cursor::new(ipc), None)
                .map_err(|e| bad(format!("not an Arrow IPC stream: {e}")))?;
            let mut batches = Vec::new();
            for b in reader {
                batches.push(b.map_err(|e| bad(format!("a damaged Arrow batch: {e}")))?);
            }
            match <[RecordBatch; 1]>::try_from(batches) {
                Ok([one]) => Ok(Record::Rows(one)),
                Err(b) => Err(bad(format!("{} batches where one was written", b.len()))),
            }
        }
        Some((b'W', json)) => {
            let v: serde_json::Value = serde_json::from_slice(json)
                .map_err(|e| bad(format!("a watermark record that is not JSON: {e}")))?;
            let watermark = v["watermark"]
                .as_i64()
                .ok_or_else(|| bad("a watermark record without its watermark".into()))?;
            let from = v["from"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.as_i64()? as i32)))
                .collect();
            let idle = v["idle"].as_bool().unwrap_or(false);
            Ok(Record::Watermark {
                from,
                watermark,
                idle,
            })
        }
        Some((tag, _)) => Err(bad(format!("an unknown record tag {tag:#04x}"))),
        None => Err(bad("an empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn records_round_trip_and_foreign_values_are_named() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec![Some("a"), Some("b")])),
            ],
        )
        .unwrap();
        let at = ("t", 3, 42);
        assert_eq!(
            decode(&encode_rows(&batch).unwrap(), at).unwrap(),
            Record::Rows(batch)
        );
        let from = vec![("bids".to_string(), 0), ("bids".to_string(), 5)];
        for idle in [false, true] {
            assert_eq!(
                decode(&encode_watermark(&from, 1_000, idle), at).unwrap(),
                Record::Watermark {
                    from: from.clone(),
                    watermark: 1_000,
                    idle
                }
            );
        }
        for (value, says) in [
            (&b"{\"k\": 1}"[..], "unknown record tag"),
            (b"", "empty record"),
            (b"Rxx", "not an Arrow IPC stream"),
            (b"W{}", "without its watermark"),
        ] {
            let e = decode(value, at).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("partition 3 at offset 42"),
                "{e}"
            );
        }
    }
}
