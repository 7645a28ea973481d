//! Evaluation of a WebAssembly UDF call: the arguments are evaluated as
//! columns and handed to the function in one call per batch, on the
//! calling thread's instance of the module (see [`crate::udf::runtime`]).

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;

use super::Node;
use super::value::Value;
use crate::error::ExecResult;
use crate::plan::expr::UdfRef;
use crate::udf::runtime;

/// A compiled UDF call.
#[derive(Debug)]
pub(crate) struct UdfCall {
    pub udf: UdfRef,
    pub args: Vec<Node>,
}

impl UdfCall {
    pub fn new(udf: UdfRef, args: Vec<Node>) -> Self {
        Self { udf, args }
    }

    pub fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let rows = batch.num_rows();
        let arrays: Vec<ArrayRef> = self
            .args
            .iter()
            .map(|a| a.eval(batch)?.into_array(rows))
            .collect::<ExecResult<_>>()?;
        let sig = &self.udf.signature;
        let out = runtime::with_instance(&self.udf.module, |i| {
            i.call(&sig.name, &arrays, rows, sig.ret)
        })?;
        Ok(Value::Array(out))
    }
}
