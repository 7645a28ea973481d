//! An aggregate written in WebAssembly behind the [`Accumulator`] contract:
//! its group table lives in the guest (one handle per accumulator); each
//! batch is one update call with a group-index column, partial states cross
//! as a BINARY column of the module's own bytes. The tables live in the
//! calling thread's instance of the module ([`crate::udf::runtime`]).

use arrow::array::ArrayRef;

use crate::agg::Accumulator;
use crate::error::ExecResult;
use crate::types::SqlType;
use crate::udf::UdfInstance;
pub use crate::udf::runtime::SharedInstance;
use crate::udf::runtime::{checked, lock};

/// One group table of a WebAssembly aggregate.
pub struct WasmAccumulator {
    instance: SharedInstance,
    function: String,
    ret: SqlType,
    handle: u32,
}

impl WasmAccumulator {
    /// A new, empty table of `function` in `instance`.
    ///
    /// # Errors
    /// The guest fails to create it.
    pub fn new(instance: SharedInstance, function: &str, ret: SqlType) -> ExecResult<Self> {
        let handle = checked(&instance, lock(&instance).agg_new(function))?;
        Ok(Self {
            instance,
            function: function.to_string(),
            ret,
            handle,
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut UdfInstance, &str, u32) -> Result<T, crate::udf::UdfError>,
    ) -> ExecResult<T> {
        let result = f(&mut lock(&self.instance), &self.function, self.handle);
        Ok(checked(&self.instance, result)?)
    }
}

impl Accumulator for WasmAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.with(|i, f, h| i.agg_update(f, h, values, group_indices, total_num_groups, false))
    }

    fn merge_batch(
        &mut self,
        states: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.with(|i, f, h| i.agg_update(f, h, states, group_indices, total_num_groups, true))
    }

    fn evaluate(&mut self, total_num_groups: usize) -> ExecResult<ArrayRef> {
        let groups: Vec<u32> = (0..total_num_groups as u32).collect();
        let ret = self.ret;
        let out = self.with(|i, f, h| i.agg_finish(f, h, &groups, ret))?;
        self.with(|i, f, h| i.agg_clear(f, h))?;
        Ok(out)
    }

    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef> {
        let ret = self.ret;
        self.with(|i, f, h| i.agg_finish(f, h, groups, ret))
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        Ok(vec![
            self.with(|i, f, h| i.agg_state(f, h, total_num_groups))?,
        ])
    }

    fn size(&self) -> usize {
        // the state lives in guest memory, capped per instance
        0
    }
}

impl Drop for WasmAccumulator {
    fn drop(&mut self) {
        if let Ok(mut i) = self.instance.lock() {
            i.agg_drop(&self.function, self.handle);
        }
    }
}
