//! Maps group keys to dense group indexes, the input of every [`Accumulator`].
//!
//! A single non-NULL-heavy BIGINT key (the common `GROUP BY auction`) uses a
//! plain FxHash map from `i64`; any other key set is encoded with Arrow's row
//! format and looked up by its bytes.
//!
//! [`Accumulator`]: crate::agg::Accumulator

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, Rows, SortField};
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher;

use crate::error::{ExecError, ExecResult};

/// Group keys seen so far and their indexes.
pub(crate) enum GroupTable {
    /// No keys: every row is group 0.
    Unit {
        /// Whether group 0 exists yet.
        present: bool,
    },
    /// One BIGINT key.
    Int64 {
        map: FxHashMap<i64, u32>,
        keys: Vec<i64>,
        null_group: Option<u32>,
    },
    /// Any keys, as Arrow rows.
    Rows {
        converter: RowConverter,
        map: HashTable<u32>,
        hashes: Vec<u64>,
        rows: Rows,
    },
}

/// The group of one BIGINT key (a new one if unseen): the per-row step of
/// [`GroupTable::intern`], inlined into its loops (it is the hot path of
/// every keyed aggregate).
#[inline(always)]
fn intern_i64(
    k: i64,
    map: &mut FxHashMap<i64, u32>,
    seen: &mut Vec<i64>,
    null_group: &Option<u32>,
) -> u32 {
    *map.entry(k).or_insert_with(|| {
        let idx = (seen.len() + usize::from(null_group.is_some())) as u32;
        seen.push(k);
        idx
    })
}

impl GroupTable {
    /// An empty table for keys of these types.
    ///
    /// # Errors
    /// A key type the row format cannot encode.
    pub fn new(key_types: &[DataType]) -> ExecResult<Self> {
        Ok(match key_types {
            [] => GroupTable::Unit { present: false },
            [DataType::Int64] => GroupTable::Int64 {
                map: FxHashMap::default(),
                keys: Vec::new(),
                null_group: None,
            },
            types => {
                let converter =
                    RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect())
                        .map_err(|e| ExecError::arrow("group keys", e))?;
                let rows = converter.empty_rows(0, 0);
                GroupTable::Rows {
                    converter,
                    map: HashTable::new(),
                    hashes: Vec::new(),
                    rows,
                }
            }
        })
    }

    /// Which strategy is used (for tests).
    #[cfg(test)]
    pub fn strategy(&self) -> &'static str {
        match self {
            GroupTable::Unit { .. } => "single-group",
            GroupTable::Int64 { .. } => "int64-hash",
            GroupTable::Rows { .. } => "row-hash",
        }
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        match self {
            GroupTable::Unit { present } => usize::from(*present),
            GroupTable::Int64 {
                keys, null_group, ..
            } => keys.len() + usize::from(null_group.is_some()),
            GroupTable::Rows { hashes, .. } => hashes.len(),
        }
    }

    /// Assigns a group index to every row of `keys`, creating groups as needed.
    ///
    /// # Errors
    /// Key columns that do not match the table's types.
    pub fn intern(
        &mut self,
        keys: &[ArrayRef],
        num_rows: usize,
        out: &mut Vec<u32>,
    ) -> ExecResult<()> {
        out.clear();
        out.reserve(num_rows);
        match self {
            GroupTable::Unit { present } => {
                *present |= num_rows > 0;
                out.resize(num_rows, 0);
            }
            GroupTable::Int64 {
                map,
                keys: seen,
                null_group,
            } => {
                let col = keys[0].as_primitive_opt::<Int64Type>().ok_or_else(|| {
                    ExecError::Internal(format!(
                        "group key is {}, expected BIGINT",
                        keys[0].data_type()
                    ))
                })?;
                let values = col.values();
                match col.nulls().filter(|n| n.null_count() > 0) {
                    None => {
                        for &k in values.iter() {
                            out.push(intern_i64(k, map, seen, null_group));
                        }
                    }
                    Some(nulls) => {
                        for (i, &k) in values.iter().enumerate() {
                            if nulls.is_valid(i) {
                                out.push(intern_i64(k, map, seen, null_group));
                            } else {
                                let n = seen.len() as u32;
                                out.push(*null_group.get_or_insert(n));
                            }
                        }
                    }
                }
            }
            GroupTable::Rows {
                converter,
                map,
                hashes,
                rows,
            } => {
                let batch_rows = converter
                    .convert_columns(keys)
                    .map_err(|e| ExecError::arrow("group keys", e))?;
                let state = FxBuildHasher;
                for r in 0..batch_rows.num_rows() {
                    let row = batch_rows.row(r);
                    let bytes = row.as_ref();
                    let h = state.hash_one(bytes);
                    let found = map
                        .find(h, |&g| rows.row(g as usize).as_ref() == bytes)
                        .copied();
                    let g = match found {
                        Some(g) => g,
                        None => {
                            let g = hashes.len() as u32;
                            hashes.push(h);
                            rows.push(row);
                            map.insert_unique(h, g, |&x| hashes[x as usize]);
                            g
                        }
                    };
                    out.push(g);
                }
            }
        }
        Ok(())
    }

    /// The key columns of groups `0..len()`, in group-index order.
    ///
    /// # Errors
    /// An Arrow failure while decoding rows.
    pub fn key_columns(&self) -> ExecResult<Vec<ArrayRef>> {
        match self {
            GroupTable::Unit { .. } => Ok(vec![]),
            GroupTable::Int64 {
                keys, null_group, ..
            } => {
                let array = match null_group {
                    None => Int64Array::from(keys.clone()),
                    Some(g) => {
                        let mut values = keys.clone();
                        values.insert(*g as usize, 0);
                        let valid = BooleanBuffer::collect_bool(values.len(), |i| i != *g as usize);
                        Int64Array::new(values.into(), Some(NullBuffer::new(valid)))
                    }
                };
                Ok(vec![Arc::new(array) as ArrayRef])
            }
            GroupTable::Rows {
                converter, rows, ..
            } => converter
                .convert_rows(rows.iter())
                .map_err(|e| ExecError::arrow("group keys", e)),
        }
    }

    /// The key columns of the given groups, in that order.
    ///
    /// # Errors
    /// An Arrow failure while decoding rows.
    pub fn key_columns_of(&self, groups: &[u32]) -> ExecResult<Vec<ArrayRef>> {
        match self {
            GroupTable::Unit { .. } => Ok(vec![]),
            GroupTable::Int64 {
                keys, null_group, ..
            } => {
                let key = |g: u32| match null_group {
                    Some(n) if g == *n => None,
                    Some(n) if g > *n => keys.get(g as usize - 1).copied(),
                    _ => keys.get(g as usize).copied(),
                };
                let array: Int64Array = groups.iter().map(|&g| key(g)).collect();
                Ok(vec![Arc::new(array) as ArrayRef])
            }
            GroupTable::Rows {
                converter, rows, ..
            } => converter
                .convert_rows(groups.iter().map(|&g| rows.row(g as usize)))
                .map_err(|e| ExecError::arrow("group keys", e)),
        }
    }

    /// Approximate heap bytes held.
    pub fn size(&self) -> usize {
        match self {
            GroupTable::Unit { .. } => 0,
            GroupTable::Int64 { map, keys, .. } => map.capacity() * 16 + keys.capacity() * 8,
            GroupTable::Rows {
                map, hashes, rows, ..
            } => map.capacity() * 4 + hashes.capacity() * 8 + rows.size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    #[test]
    fn int64_keys_get_dense_indexes_and_null_is_a_group() {
        let mut t = GroupTable::new(&[DataType::Int64]).unwrap();
        let mut out = Vec::new();
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), None, Some(7), Some(3)]));
        t.intern(&[a], 4, &mut out).unwrap();
        assert_eq!(out, [0, 1, 0, 2]);
        let keys = t.key_columns().unwrap();
        let k = keys[0].as_primitive::<Int64Type>();
        assert_eq!(k.iter().collect::<Vec<_>>(), [Some(7), None, Some(3)]);
    }

    #[test]
    fn multi_column_keys_round_trip() {
        let mut t = GroupTable::new(&[DataType::Utf8, DataType::Int64]).unwrap();
        let mut out = Vec::new();
        let s: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            Some("b"),
            Some("a"),
            None,
        ]));
        let n: ArrayRef = Arc::new(Int64Array::from(vec![1, 1, 1, 1]));
        t.intern(&[s, n], 4, &mut out).unwrap();
        assert_eq!(out, [0, 1, 0, 2]);
        assert_eq!(t.strategy(), "row-hash");
        let keys = t.key_columns().unwrap();
        assert_eq!(
            keys[0].as_string::<i32>().iter().collect::<Vec<_>>(),
            [Some("a"), Some("b"), None]
        );
    }

    #[test]
    fn keys_of_chosen_groups() {
        let mut t = GroupTable::new(&[DataType::Int64]).unwrap();
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), None, Some(9)]));
        let mut ids = Vec::new();
        t.intern(&[keys], 3, &mut ids).unwrap();
        let got = t.key_columns_of(&[2, 0, 1]).unwrap();
        let expect: ArrayRef = Arc::new(Int64Array::from(vec![Some(9), Some(7), None]));
        assert_eq!(&got[0], &expect);
        let mut t = GroupTable::new(&[DataType::Utf8, DataType::Int64]).unwrap();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["a", "b"])),
            Arc::new(Int64Array::from(vec![1, 2])),
        ];
        t.intern(&cols, 2, &mut ids).unwrap();
        let got = t.key_columns_of(&[1]).unwrap();
        assert_eq!(got[0].as_string::<i32>().value(0), "b");
    }

    #[test]
    fn no_keys_is_one_group() {
        let mut t = GroupTable::new(&[]).unwrap();
        let mut out = Vec::new();
        t.intern(&[], 3, &mut out).unwrap();
        assert_eq!((out.as_slice(), t.len()), ([0, 0, 0].as_slice(), 1));
    }
}
