//! Plans: typed expressions, the logical plan and the physical plan with EXPLAIN.

pub mod expr;
