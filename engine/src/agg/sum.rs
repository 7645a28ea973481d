//! `SUM(x)`: integers sum as BIGINT (wrapping on overflow), doubles as DOUBLE.

use arrow::datatypes::ArrowNativeTypeOp;

use crate::agg::fold::FoldOp;

/// Addition, wrapping for integers.
pub(crate) struct SumOp;

impl<N: ArrowNativeTypeOp> FoldOp<N> for SumOp {
    const NAME: &'static str = "sum";

    fn combine(acc: N, x: N) -> N {
        acc.add_wrapping(x)
    }
}
