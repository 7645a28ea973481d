//! Execution: column-wise expression evaluation, push-based operators, the
//! operator pipeline and the threads that run it.

pub(crate) mod aggregate;
pub(crate) mod changelog;
pub(crate) mod exchange;
pub mod export;
pub(crate) mod expr;
pub(crate) mod group_table;
pub(crate) mod grouped_state;
pub(crate) mod join;
pub(crate) mod late;
pub mod metrics;
pub mod operator;
pub mod pipeline;
pub(crate) mod proctime;
pub(crate) mod rank;
pub mod rescale;
pub(crate) mod row_window;
pub(crate) mod stateless;
pub(crate) mod top_n;
pub(crate) mod ttl;
pub(crate) mod union;
pub(crate) mod watermark;
pub(crate) mod window;
