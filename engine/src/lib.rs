//! Eddy: a streaming SQL engine over Apache Arrow record batches.
//!
//! SQL text is parsed (`sql`), planned (`plan`) and run by push-based
//! operators (`exec`) on worker threads, reading from and writing to
//! connectors (`connectors`).

pub mod catalog;
pub mod connectors;
pub mod error;
pub mod types;

pub use error::{ConnectorError, EngineError, ExecError, PlanError};
pub mod agg;
pub mod exec;
pub mod plan;
pub mod sql;
