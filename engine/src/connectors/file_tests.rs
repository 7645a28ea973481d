//! The file source and sink: reading, malformed lines, parallel decoding,
//! projection, following, positions.

use super::*;
use crate::catalog::Options;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use std::io::Write;

fn def(path: &str, extra: &[(&str, &str)]) -> StreamDef {
    let mut opts = vec![
        ("connector".to_string(), "file".to_string()),
        ("path".to_string(), path.to_string()),
    ];
    opts.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    StreamDef {
        name: "s".into(),
        schema: Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)])),
        watermark: None,
        primary_key: Vec::new(),
        options: Options::new("s", opts),
        event_time: Default::default(),
        pos: Default::default(),
    }
}

fn drain(src: &mut FileSource) -> Result<Vec<i64>, ConnectorError> {
    let mut out = Vec::new();
    loop {
        match src.poll()? {
            SourceEvent::Batch(b) => {
                out.extend(b.column(0).as_primitive::<Int64Type>().values().iter())
            }
            SourceEvent::Idle | SourceEvent::Watermark(_) => {}
            SourceEvent::End => return Ok(out),
        }
    }
}

#[test]
fn reads_batches_and_a_last_line_without_newline() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.jsonl");
    std::fs::write(&p, "{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}").unwrap();
    let ctx = SourceContext::new(2);
    let mut src = FileSource::open(&def(p.to_str().unwrap(), &[]), &ctx).unwrap();
    assert_eq!(drain(&mut src).unwrap(), [1, 2, 3]);
    assert_eq!(ctx.counters.records.load(Ordering::Relaxed), 3);
}

#[test]
fn malformed_lines_skip_or_fail_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.jsonl");
    std::fs::write(&p, "{\"a\":1}\n{\"a\":}\n{\"a\":3}\n").unwrap();
    let ctx = SourceContext::new(10);
    let mut src = FileSource::open(
        &def(p.to_str().unwrap(), &[("format.on_error", "skip")]),
        &ctx,
    )
    .unwrap();
    assert_eq!(drain(&mut src).unwrap(), [1, 3]);
    assert_eq!(ctx.counters.malformed.load(Ordering::Relaxed), 1);
    let mut src =
        FileSource::open(&def(p.to_str().unwrap(), &[]), &SourceContext::new(10)).unwrap();
    let e = drain(&mut src).unwrap_err().to_string();
    assert!(e.contains("malformed record at line 2"), "{e}");
}

/// Lines 1..=n with a malformed one every 997th, in a file of many chunks.
fn many_chunks(dir: &std::path::Path, n: i64) -> String {
    let p = dir.join("many.jsonl");
    let text: String = (1..=n)
        .map(|i| {
            if i % 997 == 0 {
                "{\"a\":\n".to_string()
            } else {
                format!("{{\"a\":{i},\"b\":\"x{i}\"}}\n")
            }
        })
        .collect();
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn read_with(
    path: &str,
    decoders: usize,
    extra: &[(&str, &str)],
) -> (Result<Vec<i64>, ConnectorError>, u64) {
    let mut ctx = SourceContext::new(100);
    ctx.decoders = decoders;
    let mut src = FileSource::open(&def(path, extra), &ctx).unwrap();
    src.chunk = 4096;
    let rows = drain(&mut src);
    (rows, ctx.counters.malformed.load(Ordering::Relaxed))
}

#[test]
fn decoding_on_several_threads_keeps_rows_order_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = many_chunks(dir.path(), 20_000);
    let skip = [("format.on_error", "skip")];
    let (one, bad_one) = read_with(&path, 1, &skip);
    let (three, bad_three) = read_with(&path, 3, &skip);
    let one = one.unwrap();
    assert_eq!(one.len(), 20_000 - 20);
    assert_eq!(three.unwrap(), one, "same rows, same order");
    assert_eq!((bad_one, bad_three), (20, 20));
    // under 'fail' the first bad line stops the source, wherever it was decoded
    let e = read_with(&path, 3, &[]).0.unwrap_err().to_string();
    assert!(e.contains("malformed record at line 997"), "{e}");
}

#[test]
fn columns_the_query_does_not_read_are_not_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.jsonl");
    std::fs::write(&p, "{\"a\":1,\"b\":2}\n{\"a\":3,\"b\":4}\n").unwrap();
    let mut d = def(p.to_str().unwrap(), &[]);
    d.schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Int64, true),
    ]));
    let mut ctx = SourceContext::new(10);
    ctx.projection = Some(vec![1]);
    let mut src = FileSource::open(&d, &ctx).unwrap();
    let SourceEvent::Batch(b) = src.poll().unwrap() else {
        panic!("a batch")
    };
    assert_eq!(b.schema(), d.schema, "the stream's columns");
    assert_eq!(b.column(0).null_count(), 2, "a is not read");
    let got: Vec<i64> = b.column(1).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(got, [2, 4]);
}

#[test]
fn follow_picks_up_appended_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("grow.jsonl");
    std::fs::write(&p, "{\"a\":1}\n{\"a\":").unwrap();
    let ctx = SourceContext::new(10);
    let mut src = FileSource::open(&def(p.to_str().unwrap(), &[("follow", "true")]), &ctx).unwrap();
    let mut seen: Vec<i64> = Vec::new();
    let mut appended = false;
    for _ in 0..200 {
        match src.poll().unwrap() {
            SourceEvent::Batch(b) => {
                seen.extend(b.column(0).as_primitive::<Int64Type>().values().iter())
            }
            SourceEvent::Idle if !appended => {
                let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
                f.write_all(b"2}\n{\"a\":3}\n").unwrap();
                appended = true;
            }
            SourceEvent::Idle if seen.len() == 3 => ctx.shutdown.store(true, Ordering::Relaxed),
            SourceEvent::Idle | SourceEvent::Watermark(_) => {}
            SourceEvent::End => break,
        }
    }
    assert_eq!(seen, [1, 2, 3]);
}

#[test]
fn missing_file_and_bad_options_are_clear() {
    let e = FileSource::open(&def("/nonexistent/x.jsonl", &[]), &SourceContext::new(1))
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .starts_with("stream 's': cannot open '/nonexistent/x.jsonl'"),
        "{e}"
    );
    let e = validate(&def("x", &[("format", "xml")]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "stream 's': option 'format' = 'xml' must be one of: json, csv"
    );
}

#[test]
fn sink_round_trips_through_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("out.jsonl");
    let d = def(p.to_str().unwrap(), &[]);
    let ctx = crate::connectors::SinkContext {
        bounded_input: true,
    };
    let mut sink = FileSink::open(&d, d.schema.clone(), &ctx).unwrap();
    let b = RecordBatch::try_new(
        d.schema.clone(),
        vec![Arc::new(arrow::array::Int64Array::from(vec![7, 8]))],
    )
    .unwrap();
    sink.write(&b).unwrap();
    sink.close().unwrap();
    let mut src = FileSource::open(&d, &SourceContext::new(10)).unwrap();
    assert_eq!(drain(&mut src).unwrap(), [7, 8]);
}

/// Reading to any batch, taking the position, and resuming a fresh source
/// there gives exactly the rows that followed, whatever the chunk sizes
/// (positions inside a chunk, a seek whose skipped rows run past a chunk,
/// blank and malformed lines, several decoders).
#[test]
fn a_position_resumes_exactly_where_it_was_taken() {
    let dir = tempfile::tempdir().unwrap();
    let path = many_chunks(dir.path(), 3_000);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.insert_str(0, "\n\n");
    std::fs::write(&path, text).unwrap();
    let skip = [("format.on_error", "skip")];
    let open = |chunk: usize| {
        let mut ctx = SourceContext::new(37);
        ctx.decoders = 2;
        let mut src = FileSource::open(&def(&path, &skip), &ctx).unwrap();
        src.chunk = chunk;
        src
    };
    let all = drain(&mut open(1000)).unwrap();
    assert_eq!(all.len(), 3_000 - 3);
    for (stop_after, chunk) in [(1, 1000), (2, 777), (5, 4096), (40, 300), (81, 1000)] {
        let mut src = open(chunk);
        let mut read = Vec::new();
        let mut batches = 0;
        while batches < stop_after {
            match src.poll().unwrap() {
                SourceEvent::Batch(b) => {
                    read.extend(b.column(0).as_primitive::<Int64Type>().values().iter());
                    batches += 1;
                }
                SourceEvent::Idle | SourceEvent::Watermark(_) => {}
                SourceEvent::End => break,
            }
        }
        let at = src.resume_state().expect("a file source can resume");
        // resumed with other chunk sizes: the skipped rows fall differently
        for resume_chunk in [chunk, 64, 5000] {
            let mut again = open(resume_chunk);
            again.resume(&at).unwrap();
            let mut rest = read.clone();
            rest.extend(drain(&mut again).unwrap());
            assert_eq!(rest, all, "stopped after {stop_after} batches at {at:?}");
        }
    }
}

/// A batch of `d`'s one BIGINT column.
fn int_rows(d: &StreamDef, v: Vec<i64>) -> RecordBatch {
    RecordBatch::try_new(
        d.schema.clone(),
        vec![Arc::new(arrow::array::Int64Array::from(v))],
    )
    .unwrap()
}

/// Under checkpoints the sink records its length and a restart cuts the
/// file back to it, also when a checkpoint comes before the restarted run
/// wrote anything, and keeps a CSV header once.
#[test]
fn a_recovered_sink_cuts_the_file_back_to_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("out.csv");
    let d = def(p.to_str().unwrap(), &[("format", "csv")]);
    let ctx = crate::connectors::SinkContext {
        bounded_input: true,
    };
    let rows = |v: Vec<i64>| int_rows(&d, v);
    let mut first = FileSink::open(&d, d.schema.clone(), &ctx).unwrap();
    first.recover(None).unwrap();
    first.write(&rows(vec![1, 2])).unwrap();
    let at = first.checkpoint_state().unwrap();
    assert_eq!(at, serde_json::json!({ "length": 6 }));
    first.write(&rows(vec![3])).unwrap();
    first.flush().unwrap();
    // killed: the file holds a row after the checkpoint
    std::mem::forget(first);
    for _ in 0..2 {
        let mut again = FileSink::open(&d, d.schema.clone(), &ctx).unwrap();
        again.recover(Some(&at)).unwrap();
        // a checkpoint before any row of this run keeps what was written
        assert_eq!(again.checkpoint_state().unwrap(), at);
        std::mem::forget(again);
    }
    let mut last = FileSink::open(&d, d.schema.clone(), &ctx).unwrap();
    last.recover(Some(&at)).unwrap();
    last.write(&rows(vec![4])).unwrap();
    last.close().unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "a\n1\n2\n4\n");
    let short = serde_json::json!({ "length": 100 });
    let mut wrong = FileSink::open(&d, d.schema.clone(), &ctx).unwrap();
    wrong.recover(Some(&short)).unwrap();
    let e = wrong.close().unwrap_err().to_string();
    assert!(e.contains("changed outside Eddy"), "{e}");
}

/// An Avro container file under checkpoints: the restarted run cuts the
/// file back to a block boundary and appends blocks the header's sync
/// marker frames, so arrow-avro's reader reads the rows before the
/// checkpoint and those after the restart, and not the lost one.
#[test]
fn a_recovered_avro_sink_keeps_a_valid_container_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("out.avro");
    let d = def(p.to_str().unwrap(), &[("format", "avro")]);
    let ctx = crate::connectors::SinkContext {
        bounded_input: false,
    };
    let rows = |v: Vec<i64>| int_rows(&d, v);
    let mut first = FileSink::open(&d, d.schema.clone(), &ctx).unwrap();
    first.recover(None).unwrap();
    first.write(&rows(vec![1, 2])).unwrap();
    let at = first.checkpoint_state().unwrap();
    first.write(&rows(vec![3])).unwrap();
    first.flush().unwrap();
    // killed after a block past the checkpoint
    std::mem::forget(first);
    let mut again = FileSink::open(&d, d.schema.clone(), &ctx).unwrap();
    again.recover(Some(&at)).unwrap();
    again.write(&rows(vec![4])).unwrap();
    again.write(&rows(vec![5, 6])).unwrap();
    again.close().unwrap();
    let mut src =
        crate::connectors::avro::file::AvroFileSource::open(&d, &SourceContext::new(10)).unwrap();
    let mut read: Vec<i64> = Vec::new();
    loop {
        match src.poll().unwrap() {
            SourceEvent::Batch(b) => {
                read.extend(b.column(0).as_primitive::<Int64Type>().values().iter())
            }
            SourceEvent::End => break,
            _ => {}
        }
    }
    assert_eq!(read, [1, 2, 4, 5, 6]);
}
