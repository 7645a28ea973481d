//! Shared inputs and drivers for the operator benches.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use eddy::exec::metrics::QueryMetrics;
use eddy::exec::operator::Message;
use eddy::exec::pipeline::Pipeline;

/// Rows per bench run.
pub const ROWS: usize = 1_000_000;
/// Rows per batch.
pub const BATCH: usize = 8192;
/// Distinct live auctions.
pub const AUCTIONS: u64 = 1000;

/// Distinct bidders.
pub const BIDDERS: u64 = 10_000;

/// Nexmark-like bids: 10,000 events per second of event time (so 100,000
/// rows per 10 s window), ~1000 live auctions, ~10,000 bidders, prices up to $100.
pub fn batches() -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("price", DataType::Float64, true),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        Field::new("bidder", DataType::Int64, true),
    ]));
    let mut x: u64 = 42;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..ROWS)
        .step_by(BATCH)
        .map(|start| {
            let n = BATCH.min(ROWS - start);
            let auction: Int64Array = (0..n).map(|_| 1000 + (next() % AUCTIONS) as i64).collect();
            let price: Float64Array = (0..n).map(|_| (next() % 10_000) as f64 / 100.0).collect();
            let bidder: Int64Array = (0..n).map(|_| 2000 + (next() % BIDDERS) as i64).collect();
            let ts = TimestampMillisecondArray::from_iter_values(
                (start..start + n).map(|i| 1_767_225_600_000 + (i as i64) / 10),
            );
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(auction),
                    Arc::new(price),
                    Arc::new(ts),
                    Arc::new(bidder),
                ],
            )
            .expect("valid batch")
        })
        .collect()
}

/// The plan of `select` over the bench stream `bids` (the columns of [`batches`]).
pub fn plan(select: &str) -> eddy::PhysicalPlan {
    let sql = format!(
        "CREATE STREAM bids (auction BIGINT, price DOUBLE, date_time TIMESTAMP, bidder BIGINT,
           WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
         WITH (connector = 'file', path = 'in-memory.jsonl');
         {select}"
    );
    let mut script = eddy::plan_script(&sql).expect("bench SQL plans");
    script.queries.remove(0)
}

/// The operator pipeline of `select` over the bench stream `bids`.
pub fn pipeline(select: &str) -> Pipeline {
    Pipeline::build(&plan(select), &Arc::new(QueryMetrics::default())).expect("pipeline builds")
}

/// A source handing out pre-built batches, then ending.
pub struct MemorySource(pub std::collections::VecDeque<RecordBatch>);

impl eddy::connectors::Source for MemorySource {
    fn poll(&mut self) -> Result<eddy::connectors::SourceEvent, eddy::ConnectorError> {
        Ok(match self.0.pop_front() {
            Some(b) => eddy::connectors::SourceEvent::Batch(b),
            None => eddy::connectors::SourceEvent::End,
        })
    }
}

/// A sink that only counts rows.
#[derive(Default)]
pub struct CountSink(pub u64);

impl eddy::connectors::Sink for CountSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), eddy::ConnectorError> {
        self.0 += batch.num_rows() as u64;
        Ok(())
    }

    fn close(&mut self) -> Result<(), eddy::ConnectorError> {
        Ok(())
    }
}

/// Runs `select` over `input` on the query runtime (source, `partitions`
/// workers, sink threads); returns the rows written.
pub fn run_threads(select: &str, input: &[RecordBatch], partitions: usize) -> u64 {
    let plan = plan(select);
    let source = Box::new(MemorySource(input.iter().cloned().collect()));
    let options = eddy::RunOptions {
        partitions,
        batch_size: BATCH,
        ..eddy::RunOptions::default()
    };
    let spec = eddy::JobSpec::new("bench", plan)
        .options(options)
        .source(source)
        .sink(Box::new(CountSink::default()));
    let q = eddy::JobManager::new().submit(spec).expect("query starts");
    let stats = q.wait().expect("query runs");
    assert_eq!(stats.records_in, 0, "the memory source does not count rows");
    stats.records_out
}

/// Pushes every batch through the pipeline of `select`, then closes it;
/// returns the number of output batches.
pub fn run(select: &str, input: &[RecordBatch]) -> usize {
    let mut p = pipeline(select);
    let mut out = 0;
    for b in input {
        out += p.push(Message::Batch(b.clone())).expect("push").len();
    }
    out + p.close().expect("close").len()
}
