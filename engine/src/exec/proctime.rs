//! Processing time: before a window over a `PROCTIME()` column, the
//! stream's watermarks become the wall clock, so each window closes when
//! the clock passes its end (Flink's processing-time windows). A watermark
//! still comes after each source batch and, from an idle source, as time
//! passes; the end of the input (the largest watermark) passes unchanged.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::ExecResult;
use crate::exec::expr::clock::now_ms;
use crate::exec::operator::{Collector, Message, Operator};
use crate::plan::explain::Params;
use crate::plan::physical::{BuildContext, NodeKind};

/// Turns watermarks into the wall clock.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProcessingTimeNode;

impl NodeKind for ProcessingTimeNode {
    fn explain(&self) -> (&'static str, Params) {
        (
            "ProcessingTime",
            vec![("watermarks".to_string(), "the wall clock".to_string())],
        )
    }

    fn output_schema(&self, input: &SchemaRef) -> SchemaRef {
        input.clone()
    }

    fn build(&self, _ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(ProcessingTimeOp { last: i64::MIN })))
    }
}

struct ProcessingTimeOp {
    /// The last watermark given (the clock may step back: it never does).
    last: i64,
}

impl Operator for ProcessingTimeOp {
    fn name(&self) -> &'static str {
        "processing_time"
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        out.push(Message::Batch(batch));
        Ok(())
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        let now = if watermark == i64::MAX {
            i64::MAX
        } else {
            now_ms()
        };
        self.last = self.last.max(now);
        out.push(Message::Watermark(self.last));
        Ok(())
    }
}
