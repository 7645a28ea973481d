//! placeholder (being written)
use super::*;
pub fn validate(_d: &StreamDef) -> Result<(), ConnectorError> {
    unimplemented!()
}
pub struct FileSource;
impl FileSource {
    pub fn open(_d: &StreamDef, _c: &SourceContext) -> Result<Self, ConnectorError> {
        unimplemented!()
    }
}
impl Source for FileSource {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        unimplemented!()
    }
}
pub struct FileSink;
impl FileSink {
    pub fn open(_d: &StreamDef, _s: SchemaRef) -> Result<Self, ConnectorError> {
        unimplemented!()
    }
}
impl Sink for FileSink {
    fn write(&mut self, _b: &RecordBatch) -> Result<(), ConnectorError> {
        unimplemented!()
    }
    fn close(&mut self) -> Result<(), ConnectorError> {
        unimplemented!()
    }
}
