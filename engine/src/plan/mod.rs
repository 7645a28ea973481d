//! Plans: typed expressions, the logical plan, and the physical plan with
//! its EXPLAIN renderings (indented text and a JSON graph).

pub(crate) mod explain;
pub mod expr;
pub mod logical;
pub mod physical;
pub(crate) mod projection;
pub mod serde_plan;
