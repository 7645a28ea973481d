//! `UNION ALL`: the rows of several inputs, as they come. Input 0 is the
//! plan's own chain, input `k` the plan branch `inputs[k - 1]`
//! (`PhysicalPlan::branches`), each with its own source. The planner gives
//! every input the same column types; the rows go on under the first
//! input's column names. Event time goes on at the slowest input's
//! watermark (an input that ended no longer holds it back).

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::{ExecError, ExecResult};
use crate::exec::operator::{Collector, Message, Operator};
use crate::plan::explain::Params;
use crate::plan::physical::{BuildContext, NodeKind};

/// `UNION ALL` of the rows before it and of the plan branches `inputs`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UnionNode {
    /// The plan branches whose rows join those of the chain.
    pub inputs: Vec<usize>,
}

impl NodeKind for UnionNode {
    fn explain(&self) -> (&'static str, Params) {
        let branches: Vec<String> = self.inputs.iter().map(|b| format!("#{b}")).collect();
        ("UnionAll", vec![("branches".into(), branches.join(", "))])
    }

    fn output_schema(&self, input: &SchemaRef) -> SchemaRef {
        input.clone()
    }

    fn build(&self, ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(UnionOp {
            schema: ctx.input.clone(),
            clock: InputsClock::new(self.inputs.len() + 1),
        })))
    }
}

/// The watermark of an operator with several inputs: the minimum of
/// theirs, passed on when it advances. When every input has ended
/// (`i64::MAX`) nothing is passed: the end of input itself closes what is
/// open.
pub(crate) struct InputsClock {
    watermarks: Vec<i64>,
    emitted: i64,
}

impl InputsClock {
    pub(crate) fn new(inputs: usize) -> Self {
        Self {
            watermarks: vec![i64::MIN; inputs],
            emitted: i64::MIN,
        }
    }

    /// Input `port`'s watermark came; pushes the minimum on if it advanced.
    pub(crate) fn advance(&mut self, port: usize, watermark: i64, out: &mut Collector) {
        if let Some(w) = self.watermarks.get_mut(port) {
            *w = (*w).max(watermark);
        }
        let min = self.watermarks.iter().copied().min().unwrap_or(i64::MIN);
        if min > self.emitted && min < i64::MAX {
            self.emitted = min;
            out.push(Message::Watermark(min));
        }
    }
}

/// Passes every input's rows on; the watermark is the inputs' minimum.
struct UnionOp {
    schema: SchemaRef,
    clock: InputsClock,
}

impl Operator for UnionOp {
    fn name(&self) -> &'static str {
        "union_all"
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        self.process_input(0, batch, out)
    }

    fn process_input(
        &mut self,
        _port: usize,
        batch: RecordBatch,
        out: &mut Collector,
    ) -> ExecResult<()> {
        let renamed = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())
            .map_err(|e| ExecError::arrow("UNION ALL", e))?;
        out.push(Message::Batch(renamed));
        Ok(())
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        self.handle_input_watermark(0, watermark, out)
    }

    fn handle_input_watermark(
        &mut self,
        port: usize,
        watermark: i64,
        out: &mut Collector,
    ) -> ExecResult<()> {
        self.clock.advance(port, watermark, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn rows_pass_under_the_first_names_and_the_slowest_watermark_leads() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let mut op = UnionOp {
            schema: schema.clone(),
            clock: InputsClock::new(2),
        };
        let other = Arc::new(Schema::new(vec![Field::new("b", DataType::Int64, true)]));
        let batch =
            RecordBatch::try_new(other, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
        let mut out = Collector::default();
        op.process_input(1, batch, &mut out).unwrap();
        op.handle_input_watermark(0, 10, &mut out).unwrap();
        op.handle_input_watermark(1, 5, &mut out).unwrap();
        op.handle_input_watermark(1, i64::MAX, &mut out).unwrap();
        let got: Vec<String> = out
            .take()
            .into_iter()
            .map(|m| match m {
                Message::Batch(b) => format!("{}:{}", b.schema().field(0).name(), b.num_rows()),
                Message::Watermark(w) => format!("w{w}"),
                _ => "?".into(),
            })
            .collect();
        assert_eq!(got, ["a:2", "w5", "w10"]);
    }
}
