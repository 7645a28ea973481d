//! Aggregate calls of a UDF instance: group tables in the guest, updated
//! and merged once per batch, read out, slid over row frames.

use std::sync::Arc;

use eddy_udf_abi::{AGG_PREFIX, ERR_NO_RETRACT};

use arrow::array::{ArrayRef, BinaryArray};

use super::instance::{UdfInstance, call_error, check_code};
use crate::types::SqlType;
use crate::udf::UdfError;

impl UdfInstance {
    /// A new, empty group table of aggregate `function`; returns its handle.
    ///
    /// # Errors
    /// [`UdfError::Call`]: a trap or a missing export.
    pub fn agg_new(&mut self, function: &str) -> Result<u32, UdfError> {
        let f = self
            .export::<(), u32>(&format!("{AGG_PREFIX}new_{function}"))
            .map_err(|r| call_error(function, r))?;
        self.arm_deadline();
        f.call(&mut self.store, ())
            .map_err(|e| call_error(function, self.explain(e)))
    }

    /// Frees a group table.
    pub fn agg_drop(&mut self, function: &str, handle: u32) {
        if let Ok(f) = self.export::<u32, ()>(&format!("{AGG_PREFIX}drop_{function}")) {
            self.arm_deadline();
            let _ = f.call(&mut self.store, handle);
        }
    }

    /// Empties a group table.
    ///
    /// # Errors
    /// [`UdfError::Call`]: a trap or a missing export.
    pub fn agg_clear(&mut self, function: &str, handle: u32) -> Result<(), UdfError> {
        let f = self
            .export::<u32, ()>(&format!("{AGG_PREFIX}clear_{function}"))
            .map_err(|r| call_error(function, r))?;
        self.arm_deadline();
        f.call(&mut self.store, handle)
            .map_err(|e| call_error(function, self.explain(e)))
    }

    /// Adds row `i` of `args` to group `groups[i]` (`update`), or, with
    /// `merge`, merges serialized state `i` (one BINARY column) into it.
    ///
    /// # Errors
    /// [`UdfError::Call`]: a trap, the deadline, the memory cap, an error code.
    pub fn agg_update(
        &mut self,
        function: &str,
        handle: u32,
        args: &[ArrayRef],
        groups: &[u32],
        num_groups: usize,
        merge: bool,
    ) -> Result<(), UdfError> {
        let fail = |r: String| call_error(function, r);
        let which = if merge { "merge" } else { "update" };
        let f = self
            .export::<(u32, u32, u32, u32, u32), i32>(&format!("{AGG_PREFIX}{which}_{function}"))
            .map_err(fail)?;
        let (base, groups_at) = self.write_args(args, Some(groups)).map_err(fail)?;
        self.arm_deadline();
        let code = f
            .call(
                &mut self.store,
                (
                    handle,
                    base,
                    groups.len() as u32,
                    groups_at,
                    num_groups as u32,
                ),
            )
            .map_err(|e| fail(self.explain(e)))?;
        check_code(code).map_err(fail)
    }

    /// The results of the listed groups, without changing them.
    ///
    /// # Errors
    /// [`UdfError::Call`]: a trap or a malformed result.
    pub fn agg_finish(
        &mut self,
        function: &str,
        handle: u32,
        groups: &[u32],
        ret: SqlType,
    ) -> Result<ArrayRef, UdfError> {
        let fail = |r: String| call_error(function, r);
        let f = self
            .export::<(u32, u32, u32), i32>(&format!("{AGG_PREFIX}finish_{function}"))
            .map_err(fail)?;
        let (_, groups_at) = self.write_args(&[], Some(groups)).map_err(fail)?;
        self.arm_deadline();
        let code = f
            .call(&mut self.store, (handle, groups_at, groups.len() as u32))
            .map_err(|e| fail(self.explain(e)))?;
        check_code(code).map_err(fail)?;
        self.read_result(code as u32, groups.len(), ret)
            .map_err(fail)
    }

    /// Runs a row window's operations on the table (`ops`: triples of op —
    /// 0 update, 1 retract, 2 finish —, group, argument row); returns the
    /// finish results in order, or `None` when the aggregate cannot retract.
    ///
    /// # Errors
    /// [`UdfError::Call`]: a trap, the deadline, a malformed result.
    pub fn agg_slide(
        &mut self,
        function: &str,
        handle: u32,
        args: &[ArrayRef],
        ops: &[u32],
        ret: SqlType,
    ) -> Result<Option<ArrayRef>, UdfError> {
        let fail = |r: String| call_error(function, r);
        let f = self
            .export::<(u32, u32, u32, u32, u32), i32>(&format!("{AGG_PREFIX}slide_{function}"))
            .map_err(fail)?;
        let rows = args.first().map_or(0, |a| a.len());
        let (base, ops_at) = self.write_args(args, Some(ops)).map_err(fail)?;
        self.arm_deadline();
        let code = f
            .call(
                &mut self.store,
                (handle, base, rows as u32, ops_at, (ops.len() / 3) as u32),
            )
            .map_err(|e| fail(self.explain(e)))?;
        if code == ERR_NO_RETRACT {
            return Ok(None);
        }
        check_code(code).map_err(fail)?;
        let finishes = ops.chunks_exact(3).filter(|o| o[0] == 2).count();
        self.read_result(code as u32, finishes, ret)
            .map(Some)
            .map_err(fail)
    }

    /// The serialized states of groups `0..n` (a BINARY column); empties the table.
    ///
    /// # Errors
    /// [`UdfError::Call`]: a trap or a malformed result.
    pub fn agg_state(
        &mut self,
        function: &str,
        handle: u32,
        n: usize,
    ) -> Result<ArrayRef, UdfError> {
        let fail = |r: String| call_error(function, r);
        let f = self
            .export::<(u32, u32), i32>(&format!("{AGG_PREFIX}state_{function}"))
            .map_err(fail)?;
        self.arm_deadline();
        let code = f
            .call(&mut self.store, (handle, n as u32))
            .map_err(|e| fail(self.explain(e)))?;
        check_code(code).map_err(fail)?;
        let (offsets, data, nulls) = self.read_variable(code as u32, n).map_err(fail)?;
        Ok(Arc::new(BinaryArray::new(offsets, data, nulls)))
    }
}
