//! placeholder (being written)
use super::*;
use crate::catalog::Options;
pub fn schema_for(_o: &Options) -> Result<SchemaRef, ConnectorError> {
    unimplemented!()
}
pub fn validate(_d: &StreamDef) -> Result<(), ConnectorError> {
    unimplemented!()
}
pub struct NexmarkSource;
impl NexmarkSource {
    pub fn open(_d: &StreamDef, _c: &SourceContext) -> Result<Self, ConnectorError> {
        unimplemented!()
    }
}
impl Source for NexmarkSource {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        unimplemented!()
    }
}
