//! `MIN(x)` and `MAX(x)` for numbers, timestamps, booleans and strings.
//! Doubles order with NaN above every number (as PostgreSQL).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::datatypes::ArrowNativeTypeOp;

use crate::agg::Accumulator;
use crate::agg::fold::FoldOp;
use crate::agg::util::is_null_type;
use crate::error::{ExecError, ExecResult};

/// The smaller value (`MAX = false`) or the larger (`MAX = true`), in a total
/// order where a double's NaN sorts above every number.
pub(crate) struct MinMaxOp<const MAX: bool>;

impl<N: ArrowNativeTypeOp, const MAX: bool> FoldOp<N> for MinMaxOp<MAX> {
    const NAME: &'static str = if MAX { "max" } else { "min" };

    fn combine(acc: N, x: N) -> N {
        let better = if MAX { x.is_gt(acc) } else { x.is_lt(acc) };
        if better { x } else { acc }
    }
}

/// MIN/MAX of BOOLEAN (false < true).
#[derive(Debug, Default)]
pub(crate) struct BoolMinMax {
    max: bool,
    best: Vec<Option<bool>>,
}

impl BoolMinMax {
    pub fn new(max: bool) -> Self {
        Self {
            max,
            best: Vec::new(),
        }
    }
}

impl Accumulator for BoolMinMax {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.best.resize(total_num_groups, None);
        if is_null_type(values) {
            return Ok(());
        }
        let v = values
            .first()
            .and_then(|v| v.as_boolean_opt())
            .ok_or_else(|| ExecError::Internal("MIN/MAX: argument is not BOOLEAN".into()))?;
        for (&g, x) in group_indices.iter().zip(v.iter()) {
            if let Some(x) = x {
                let b = &mut self.best[g as usize];
                *b = Some(match *b {
                    None => x,
                    Some(cur) if self.max => cur || x,
                    Some(cur) => cur && x,
                });
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        states: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.update_batch(states, group_indices, total_num_groups)
    }

    fn evaluate(&mut self, total_num_groups: usize) -> ExecResult<ArrayRef> {
        let mut best = std::mem::take(&mut self.best);
        best.resize(total_num_groups, None);
        Ok(Arc::new(BooleanArray::from(best)))
    }

    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef> {
        Ok(Arc::new(BooleanArray::from_iter(
            groups
                .iter()
                .map(|g| self.best.get(*g as usize).copied().flatten()),
        )))
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(total_num_groups)?])
    }

    fn size(&self) -> usize {
        self.best.capacity() * 2
    }
}

/// MIN/MAX of VARCHAR (byte-wise order); allocates only when a group's value improves.
#[derive(Debug, Default)]
pub(crate) struct StringMinMax {
    max: bool,
    best: Vec<Option<String>>,
}

impl StringMinMax {
    pub fn new(max: bool) -> Self {
        Self {
            max,
            best: Vec::new(),
        }
    }
}

impl Accumulator for StringMinMax {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.best.resize(total_num_groups, None);
        if is_null_type(values) {
            return Ok(());
        }
        let v = values
            .first()
            .and_then(|v| v.as_string_opt::<i32>())
            .ok_or_else(|| ExecError::Internal("MIN/MAX: argument is not VARCHAR".into()))?;
        for (&g, x) in group_indices.iter().zip(v.iter()) {
            let Some(x) = x else { continue };
            let b = &mut self.best[g as usize];
            let better = match b {
                None => true,
                Some(cur) if self.max => x > cur.as_str(),
                Some(cur) => x < cur.as_str(),
            };
            if better {
                match b {
                    Some(cur) => {
                        cur.clear();
                        cur.push_str(x);
                    }
                    None => *b = Some(x.to_string()),
                }
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        states: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.update_batch(states, group_indices, total_num_groups)
    }

    fn evaluate(&mut self, total_num_groups: usize) -> ExecResult<ArrayRef> {
        let mut best = std::mem::take(&mut self.best);
        best.resize(total_num_groups, None);
        Ok(Arc::new(StringArray::from(best)))
    }

    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef> {
        Ok(Arc::new(StringArray::from_iter(groups.iter().map(|g| {
            self.best.get(*g as usize).and_then(|s| s.as_deref())
        }))))
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(total_num_groups)?])
    }

    fn size(&self) -> usize {
        self.best
            .iter()
            .map(|s| s.as_ref().map_or(0, String::capacity))
            .sum::<usize>()
            + self.best.capacity() * 24
    }
}
