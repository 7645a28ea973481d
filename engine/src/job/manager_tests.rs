//! Tests of the job manager: finishing, failing, stopping.

use super::*;
use crate::connectors::{Sink, Source, SourceEvent};
use crate::error::ConnectorError;
use crate::job::RunOptions;
use arrow::array::{Int64Array, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

/// Batches from memory, then idle (never ends) or the end.
struct Memory(Vec<RecordBatch>, bool);

impl Source for Memory {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        Ok(match self.0.pop() {
            Some(b) => SourceEvent::Batch(b),
            None if self.1 => SourceEvent::End,
            None => SourceEvent::Idle,
        })
    }
}

struct Discard;

impl Sink for Discard {
    fn write(&mut self, _: &RecordBatch) -> Result<(), ConnectorError> {
        Ok(())
    }
    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

fn spec(ends: bool) -> JobSpec {
    let script = crate::plan_script(
        "CREATE STREAM s (k BIGINT, t TIMESTAMP, WATERMARK FOR t AS t) WITH (connector = 'file', path = 'x');
         SELECT k, t FROM s WHERE k > 0",
    )
    .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, -3])),
            Arc::new(TimestampMillisecondArray::from(vec![1, 2, 3])),
        ],
    )
    .unwrap();
    JobSpec::new("t", script.queries[0].clone())
        .source(Box::new(Memory(vec![batch; 4], ends)))
        .sink(Box::new(Discard))
        .options(RunOptions::default())
}

#[test]
fn a_job_that_reaches_the_end_of_its_input_finishes() {
    let jobs = JobManager::new();
    let job = jobs.submit(spec(true)).unwrap();
    let stats = job.wait().unwrap();
    assert_eq!(stats.records_out, 8);
    assert_eq!(job.status(), JobStatus::Finished);
    assert_eq!(jobs.list()[0].status, JobStatus::Finished);
    assert!(jobs.remove(job.id()).is_some());
    assert!(jobs.list().is_empty());
}

/// Fails on its second poll.
struct Broken(bool);

impl Source for Broken {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        if std::mem::replace(&mut self.0, true) {
            return Err(ConnectorError::Io {
                context: "reading in.jsonl".into(),
                source: std::io::Error::other("the disk went away"),
            });
        }
        Ok(SourceEvent::Idle)
    }
}

#[test]
fn a_failed_job_reports_its_error_to_every_waiter_and_others_run_on() {
    let jobs = JobManager::new();
    let healthy = jobs.submit(spec(false)).unwrap();
    let mut broken = spec(true);
    broken.source = Some(Box::new(Broken(false)));
    let failed = jobs.submit(broken).unwrap();
    let sub = failed.subscribe(16);
    let first = failed.wait().unwrap_err().to_string();
    assert!(first.contains("the disk went away"), "{first}");
    // a later waiter gets the same text
    assert_eq!(failed.wait().unwrap_err().to_string(), first);
    assert!(matches!(failed.status(), JobStatus::Failed(m) if m == first));
    assert!(
        sub.events
            .iter()
            .any(|e| matches!(e, JobEvent::Status(JobStatus::Failed(_))))
    );
    // the other job is untouched
    assert_eq!(healthy.status(), JobStatus::Running);
    healthy.stop();
    assert!(healthy.wait().is_ok());
}

#[test]
fn a_stopped_job_says_so_and_its_subscribers_hear_it() {
    let jobs = JobManager::new();
    let job = jobs.submit(spec(false)).unwrap();
    let sub = job.subscribe(64);
    assert!(!job.wait_timeout(Duration::from_millis(50)));
    assert!(jobs.remove(job.id()).is_none(), "a running job stays");
    assert!(jobs.stop(job.id()));
    assert!(jobs.wait_all(Duration::from_secs(10)));
    assert_eq!(job.status(), JobStatus::Stopped);
    let events: Vec<JobEvent> = sub.events.iter().collect();
    assert!(matches!(
        events.last(),
        Some(JobEvent::Status(JobStatus::Stopped))
    ));
}
