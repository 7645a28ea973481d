//! The hash exchange: which partition worker each row goes to.
//!
//! Rows are routed by a hash of the aggregate's group keys, so every row of
//! one key reaches the same worker, which then owns that key's window state.
//! The router only computes row indexes per partition; each worker gathers
//! its own rows, so the copying is spread over the workers.
//!
//! A key's hash picks one of [`KEY_GROUPS`] key groups, and the key group
//! picks the worker ([`worker_of`]): a worker owns whole key groups, so
//! state written by key group (checkpoints) can be read back by a query
//! with another number of workers, each taking the groups it now owns.

use std::hash::BuildHasher;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use rustc_hash::FxBuildHasher;

use crate::error::{ExecError, ExecResult};
use crate::exec::expr::{CompiledExpr, compile};
use crate::exec::operator::Operator;
use crate::plan::explain::{Params, named};
use crate::plan::expr::Expr;
use crate::plan::physical::{BuildContext, NodeKind};

/// Hash exchange: rows are routed by a hash of `keys` to one of the
/// partition workers (`--partitions N`); each worker owns the state of its
/// keys. Watermarks go to every worker. The runtime's hash edge does the
/// routing (with a [`Router`]), so the node has no operator.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExchangeNode {
    /// The keys hashed (the GROUP BY keys of the aggregate that follows).
    pub keys: Vec<(Expr, String)>,
}

impl NodeKind for ExchangeNode {
    fn explain(&self) -> (&'static str, Params) {
        ("Exchange", vec![("hash".into(), named(&self.keys))])
    }

    fn output_schema(&self, input: &SchemaRef) -> SchemaRef {
        input.clone()
    }

    fn build(&self, _ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        Ok(None)
    }
}

/// The partition workers' outputs merge here: the nodes after it run once,
/// over every worker's rows, with the minimum of the workers' watermarks.
/// The runtime's merge edge does it, so the node has no operator.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GatherNode;

impl NodeKind for GatherNode {
    fn explain(&self) -> (&'static str, Params) {
        ("Gather", vec![("watermark".into(), "min".into())])
    }

    fn output_schema(&self, input: &SchemaRef) -> SchemaRef {
        input.clone()
    }

    fn build(&self, _ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        Ok(None)
    }
}

/// Key groups: the unit of keyed state that moves between workers (with
/// `--partitions` changed, or, later, between processes). A power of two,
/// and more than [`crate::job::MAX_PARTITIONS`] so every worker owns some.
pub const KEY_GROUPS: usize = 1024;

/// The key group of a key hash: its top bits.
#[inline]
pub fn key_group(h: u64) -> usize {
    (h >> (64 - KEY_GROUPS.trailing_zeros())) as usize
}

/// The worker (of `n`) that owns key group `group`: contiguous ranges of
/// groups, as even as `n` allows.
#[inline]
pub fn worker_of(group: usize, n: usize) -> usize {
    group * n / KEY_GROUPS
}

/// Routes rows to `partitions` workers by key hash.
pub(crate) struct Router {
    keys: Vec<CompiledExpr>,
    partitions: usize,
    /// For keys other than one BIGINT: the row encoding that is hashed.
    converter: Option<RowConverter>,
}

impl Router {
    /// A router hashing `keys` over `partitions` workers.
    ///
    /// # Errors
    /// A key that cannot be compiled or encoded.
    pub fn new(keys: &[(Expr, String)], partitions: usize) -> ExecResult<Self> {
        let types: Vec<DataType> = keys.iter().map(|(e, _)| e.sql_type().to_arrow()).collect();
        let converter = if types == [DataType::Int64] {
            None
        } else {
            Some(
                RowConverter::new(types.into_iter().map(SortField::new).collect())
                    .map_err(|e| ExecError::arrow("exchange keys", e))?,
            )
        };
        Ok(Self {
            keys: keys
                .iter()
                .map(|(e, _)| compile(e))
                .collect::<ExecResult<_>>()?,
            partitions: partitions.max(1),
            converter,
        })
    }

    /// The row indexes of `batch` that go to each partition, in row order.
    ///
    /// # Errors
    /// A key that fails to evaluate.
    pub fn route(&self, batch: &RecordBatch) -> ExecResult<Vec<Vec<u32>>> {
        let n = self.partitions;
        let mut out: Vec<Vec<u32>> = (0..n)
            .map(|_| Vec::with_capacity(batch.num_rows() / n + 16))
            .collect();
        let keys: Vec<ArrayRef> = self
            .keys
            .iter()
            .map(|k| k.evaluate(batch))
            .collect::<ExecResult<_>>()?;
        match &self.converter {
            None => {
                let col = keys[0]
                    .as_primitive_opt::<Int64Type>()
                    .ok_or_else(|| ExecError::Internal("exchange key is not BIGINT".into()))?;
                let values = col.values();
                match col.nulls().filter(|x| x.null_count() > 0) {
                    None => {
                        for (i, &v) in values.iter().enumerate() {
                            out[bucket(mix(v as u64), n)].push(i as u32);
                        }
                    }
                    Some(nulls) => {
                        for (i, &v) in values.iter().enumerate() {
                            let h = if nulls.is_valid(i) { mix(v as u64) } else { 0 };
                            out[bucket(h, n)].push(i as u32);
                        }
                    }
                }
            }
            Some(conv) => {
                let rows = conv
                    .convert_columns(&keys)
                    .map_err(|e| ExecError::arrow("exchange keys", e))?;
                let hasher = FxBuildHasher;
                for i in 0..rows.num_rows() {
                    let h = hasher.hash_one(rows.row(i).as_ref());
                    out[bucket(h, n)].push(i as u32);
                }
            }
        }
        Ok(out)
    }
}

/// The key group of each row of `keys` (the values of the exchange's key
/// expressions, as a keyed state holds them), hashed exactly as
/// [`Router::route`] hashes rows: so state read back from a checkpoint goes
/// to the worker its rows would be routed to.
///
/// # Errors
/// Key columns that cannot be row-encoded.
pub fn key_groups(keys: &[ArrayRef]) -> ExecResult<Vec<usize>> {
    let n = keys.first().map_or(0, |k| k.len());
    if let [one] = keys
        && let Some(col) = one.as_primitive_opt::<Int64Type>()
    {
        return Ok((0..n)
            .map(|i| {
                key_group(if col.is_valid(i) {
                    mix(col.value(i) as u64)
                } else {
                    0
                })
            })
            .collect());
    }
    let conv = RowConverter::new(
        keys.iter()
            .map(|k| SortField::new(k.data_type().clone()))
            .collect(),
    )
    .map_err(|e| ExecError::arrow("state keys", e))?;
    let rows = conv
        .convert_columns(keys)
        .map_err(|e| ExecError::arrow("state keys", e))?;
    let hasher = FxBuildHasher;
    Ok((0..rows.num_rows())
        .map(|i| key_group(hasher.hash_one(rows.row(i).as_ref())))
        .collect())
}

/// A 64-bit finaliser (from MurmurHash3): spreads nearby keys apart.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The worker (of `n`) a key hash goes to: its key group's.
#[inline]
fn bucket(h: u64, n: usize) -> usize {
    worker_of(key_group(h), n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SqlType;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let k: Vec<Option<i64>> = (0..1000).map(|i| (i % 97 != 0).then_some(i % 50)).collect();
        let s: Vec<String> = (0..1000).map(|i| format!("u{}", i % 30)).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(k)),
                Arc::new(StringArray::from(s)),
            ],
        )
        .unwrap()
    }

    /// Every row goes to exactly one partition, every key to one partition
    /// only, and the partitions share the work.
    fn check(keys: &[(Expr, String)], column: usize) {
        let b = batch();
        let r = Router::new(keys, 4).unwrap();
        let parts = r.route(&b).unwrap();
        let mut all: Vec<u32> = parts.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<u32>>());
        let formatter = |i: u32| {
            arrow::util::display::array_value_to_string(b.column(column), i as usize).unwrap()
        };
        let mut owner = std::collections::HashMap::new();
        for (p, rows) in parts.iter().enumerate() {
            assert!(rows.len() > 100, "partition {p} got {} rows", rows.len());
            for &i in rows {
                assert_eq!(*owner.entry(formatter(i)).or_insert(p), p);
            }
        }
    }

    #[test]
    fn bigint_keys_route_each_key_to_one_partition() {
        check(&[(Expr::column(0, "k", SqlType::BigInt), "k".into())], 0);
    }

    #[test]
    fn other_keys_route_each_key_to_one_partition() {
        check(&[(Expr::column(1, "s", SqlType::Varchar), "s".into())], 1);
    }

    /// A keyed state's rows go, by [`key_groups`], to the worker the
    /// router sends their rows to, for BIGINT and other keys alike.
    #[test]
    fn state_key_groups_agree_with_the_router() {
        let b = batch();
        for (keys, cols) in [
            (
                vec![(Expr::column(0, "k", SqlType::BigInt), "k".into())],
                vec![0],
            ),
            (
                vec![
                    (Expr::column(1, "s", SqlType::Varchar), "s".into()),
                    (Expr::column(0, "k", SqlType::BigInt), "k".into()),
                ],
                vec![1, 0],
            ),
        ] {
            for n in [2, 3] {
                let routed = Router::new(&keys, n).unwrap().route(&b).unwrap();
                let columns: Vec<ArrayRef> = cols.iter().map(|&c| b.column(c).clone()).collect();
                let groups = key_groups(&columns).unwrap();
                for (w, rows) in routed.iter().enumerate() {
                    for &i in rows {
                        assert_eq!(worker_of(groups[i as usize], n), w);
                    }
                }
            }
        }
    }

    /// Whatever the number of workers, each owns whole key groups, in
    /// contiguous ranges, and the groups are shared as evenly as possible.
    #[test]
    fn workers_own_whole_key_groups_evenly() {
        for n in [1, 2, 3, 7, 64, 100, crate::job::MAX_PARTITIONS] {
            let mut owned = vec![0usize; n];
            let mut last = 0;
            for g in 0..KEY_GROUPS {
                let w = worker_of(g, n);
                assert!(w < n && w >= last, "n={n} g={g}");
                last = w;
                owned[w] += 1;
            }
            let (lo, hi) = (owned.iter().min().unwrap(), owned.iter().max().unwrap());
            assert!(hi - lo <= 1, "n={n}: {owned:?}");
        }
        // a hash's worker is its key group's
        for h in [0u64, 1 << 63, u64::MAX, mix(42), mix(7)] {
            assert_eq!(bucket(h, 5), worker_of(key_group(h), 5));
            assert!(key_group(h) < KEY_GROUPS);
        }
    }
}
