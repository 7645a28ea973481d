//! The `blackhole` connector (as Flink's): a sink that discards every row.
//! For benchmarks — the Nexmark suite writes its results to it — and for a
//! query whose metrics, not rows, are wanted. It takes any rows, a
//! changelog too, with or without an `_op` column declared.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::catalog::StreamDef;
use crate::connectors::Sink;
use crate::error::ConnectorError;

/// The `blackhole` connector (write only).
pub struct Blackhole;

impl crate::connectors::registry::Connector for Blackhole {
    fn name(&self) -> &'static str {
        "blackhole"
    }

    fn validate(&self, def: &StreamDef) -> Result<(), ConnectorError> {
        def.options.check_known(&[])
    }

    fn can_write(&self) -> bool {
        true
    }

    fn changelog_writes(&self) -> Option<&'static str> {
        Some("discarded")
    }

    fn open_sink(
        &self,
        def: &StreamDef,
        _schema: SchemaRef,
        _ctx: &crate::connectors::SinkContext,
    ) -> Result<Box<dyn Sink>, ConnectorError> {
        self.validate(def)?;
        Ok(Box::new(BlackholeSink))
    }
}

/// Discards what it is given.
pub struct BlackholeSink;

impl Sink for BlackholeSink {
    fn write(&mut self, _batch: &RecordBatch) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}
