//! placeholder (being written)
use super::*;
pub fn validate(_d: &StreamDef) -> Result<(), ConnectorError> {
    unimplemented!()
}
pub struct StdoutSink;
impl StdoutSink {
    pub fn open(_d: &StreamDef, _s: SchemaRef) -> Result<Self, ConnectorError> {
        unimplemented!()
    }
}
impl Sink for StdoutSink {
    fn write(&mut self, _b: &RecordBatch) -> Result<(), ConnectorError> {
        unimplemented!()
    }
    fn close(&mut self) -> Result<(), ConnectorError> {
        unimplemented!()
    }
}
