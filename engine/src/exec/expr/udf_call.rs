//! Evaluation of a WebAssembly UDF call: the arguments are evaluated as
//! columns and handed to the function in one call per batch. Each compiled
//! expression owns its instance (so each operator, on each partition
//! worker, has its own), created on first use and discarded after a failure.

use std::sync::Mutex;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;

use super::Node;
use super::value::Value;
use crate::error::{ExecError, ExecResult};
use crate::plan::expr::UdfRef;
use crate::udf::UdfInstance;

/// A compiled UDF call.
pub(crate) struct UdfCall {
    pub udf: UdfRef,
    pub args: Vec<Node>,
    instance: Mutex<Option<UdfInstance>>,
}

impl std::fmt::Debug for UdfCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UdfCall({:?})", self.udf)
    }
}

impl UdfCall {
    pub fn new(udf: UdfRef, args: Vec<Node>) -> Self {
        Self {
            udf,
            args,
            instance: Mutex::new(None),
        }
    }

    pub fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let rows = batch.num_rows();
        let arrays: Vec<ArrayRef> = self
            .args
            .iter()
            .map(|a| a.eval(batch)?.into_array(rows))
            .collect::<ExecResult<_>>()?;
        // a panic elsewhere cannot leave the instance half-used: it is only
        // touched inside this call, so a poisoned lock is still consistent
        let mut slot = self
            .instance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(UdfInstance::new(&self.udf.module)?);
        }
        let Some(instance) = slot.as_mut() else {
            return Err(ExecError::Internal("UDF instance vanished".into()));
        };
        let sig = &self.udf.signature;
        match instance.call(&sig.name, &arrays, rows, sig.ret) {
            Ok(out) => Ok(Value::Array(out)),
            Err(e) => {
                // a failed instance is never reused
                *slot = None;
                Err(e.into())
            }
        }
    }
}
