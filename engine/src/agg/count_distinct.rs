//! `COUNT(DISTINCT x)`: a hash set of values per group. Numbers, timestamps
//! and booleans are kept as 64-bit patterns (doubles with -0.0 and NaN
//! normalised), strings as owned text. State is a list of the distinct
//! values per group.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray, StringArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type};
use rustc_hash::FxHashSet;

use crate::agg::Accumulator;
use crate::error::{ExecError, ExecResult};
use crate::types::SqlType;

/// Distinct values per group.
#[derive(Debug)]
pub(crate) struct CountDistinctAccumulator {
    item: SqlType,
    bits: Vec<FxHashSet<u64>>,
    strings: Vec<FxHashSet<Box<str>>>,
}

fn f64_key(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

impl CountDistinctAccumulator {
    pub fn new(item: SqlType) -> Self {
        Self {
            item,
            bits: Vec::new(),
            strings: Vec::new(),
        }
    }

    fn is_string(&self) -> bool {
        self.item == SqlType::Varchar
    }

    fn grow(&mut self, n: usize) {
        if self.is_string() {
            self.strings.resize_with(n, FxHashSet::default);
        } else {
            self.bits.resize_with(n, FxHashSet::default);
        }
    }

    /// Inserts the values of `v` (rows `rows` of it) into group `g`'s set,
    /// or row `i` into group `groups[i]` when `groups` is given per row.
    fn insert(&mut self, v: &ArrayRef, groups: &mut dyn Iterator<Item = usize>) -> ExecResult<()> {
        let bad = || {
            ExecError::Internal(format!(
                "COUNT(DISTINCT): unexpected argument type {}",
                v.data_type()
            ))
        };
        match v.data_type() {
            DataType::Null => {}
            DataType::Utf8 => {
                let s = v.as_string_opt::<i32>().ok_or_else(bad)?;
                for (x, g) in s.iter().zip(groups) {
                    if let Some(x) = x {
                        let set = &mut self.strings[g];
                        if !set.contains(x) {
                            set.insert(x.into());
                        }
                    }
                }
            }
            DataType::Float64 => {
                let a = v.as_primitive_opt::<Float64Type>().ok_or_else(bad)?;
                for (x, g) in a.iter().zip(groups) {
                    if let Some(x) = x {
                        self.bits[g].insert(f64_key(x));
                    }
                }
            }
            DataType::Boolean => {
                let a = v.as_boolean_opt().ok_or_else(bad)?;
                for (x, g) in a.iter().zip(groups) {
                    if let Some(x) = x {
                        self.bits[g].insert(u64::from(x));
                    }
                }
            }
            _ => {
                let c =
                    cast(v, &DataType::Int64).map_err(|e| ExecError::arrow("count distinct", e))?;
                let a = c.as_primitive_opt::<Int64Type>().ok_or_else(bad)?;
                for (x, g) in a.iter().zip(groups) {
                    if let Some(x) = x {
                        self.bits[g].insert(x as u64);
                    }
                }
            }
        }
        Ok(())
    }

    /// The distinct values of every group as one flat array of the item type, plus offsets.
    fn flatten(&self, n: usize) -> ExecResult<(ArrayRef, Vec<i32>)> {
        let mut offsets = vec![0i32];
        let values: ArrayRef = if self.is_string() {
            let mut all: Vec<&str> = Vec::new();
            for set in self.strings.iter().take(n) {
                all.extend(set.iter().map(|s| &**s));
                offsets.push(all.len() as i32);
            }
            Arc::new(StringArray::from(all))
        } else {
            let mut all: Vec<u64> = Vec::new();
            for set in self.bits.iter().take(n) {
                all.extend(set.iter().copied());
                offsets.push(all.len() as i32);
            }
            match self.item {
                SqlType::Double => Arc::new(Float64Array::from_iter_values(
                    all.into_iter().map(f64::from_bits),
                )),
                SqlType::Boolean => Arc::new(BooleanArray::from(
                    all.into_iter().map(|b| b != 0).collect::<Vec<_>>(),
                )),
                t => {
                    let ints: ArrayRef = Arc::new(Int64Array::from_iter_values(
                        all.into_iter().map(|b| b as i64),
                    ));
                    cast(&ints, &t.to_arrow()).map_err(|e| ExecError::arrow("count distinct", e))?
                }
            }
        };
        offsets.resize(n + 1, *offsets.last().unwrap_or(&0));
        Ok((values, offsets))
    }
}

impl Accumulator for CountDistinctAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.grow(total_num_groups);
        let v = values
            .first()
            .ok_or_else(|| ExecError::Internal("COUNT(DISTINCT) needs an argument".into()))?;
        self.insert(v, &mut group_indices.iter().map(|&g| g as usize))
    }

    fn merge_batch(
        &mut self,
        states: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.grow(total_num_groups);
        let lists = states
            .first()
            .and_then(|s| s.as_list_opt::<i32>())
            .ok_or_else(|| ExecError::Internal("COUNT(DISTINCT) state must be a list".into()))?;
        let offsets = lists.value_offsets();
        let groups = group_indices.iter().enumerate().flat_map(|(r, &g)| {
            let len = (offsets[r + 1] - offsets[r]) as usize;
            std::iter::repeat_n(g as usize, len)
        });
        let start = offsets[0] as usize;
        let end = offsets[group_indices.len()] as usize;
        let values = lists.values().slice(start, end - start);
        self.insert(&values, &mut groups.into_iter())
    }

    fn evaluate(&mut self, total_num_groups: usize) -> ExecResult<ArrayRef> {
        self.grow(total_num_groups);
        let counts: Vec<i64> = if self.is_string() {
            self.strings.iter().map(|s| s.len() as i64).collect()
        } else {
            self.bits.iter().map(|s| s.len() as i64).collect()
        };
        self.bits.clear();
        self.strings.clear();
        Ok(Arc::new(Int64Array::from(counts)))
    }

    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef> {
        let len = |g: &u32| {
            let g = *g as usize;
            if self.is_string() {
                self.strings.get(g).map_or(0, |s| s.len() as i64)
            } else {
                self.bits.get(g).map_or(0, |s| s.len() as i64)
            }
        };
        Ok(Arc::new(Int64Array::from_iter_values(
            groups.iter().map(len),
        )))
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        self.grow(total_num_groups);
        let (values, offsets) = self.flatten(total_num_groups)?;
        let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
        let list = ListArray::try_new(field, OffsetBuffer::new(offsets.into()), values, None)
            .map_err(|e| ExecError::arrow("count distinct state", e))?;
        self.bits.clear();
        self.strings.clear();
        Ok(vec![Arc::new(list)])
    }

    fn size(&self) -> usize {
        self.bits.iter().map(|s| s.capacity() * 9).sum::<usize>()
            + self
                .strings
                .iter()
                .map(|s| s.iter().map(|x| x.len() + 17).sum::<usize>())
                .sum::<usize>()
    }
}
