//! Execution: column-wise expression evaluation and push-based operators.

pub mod expr;
