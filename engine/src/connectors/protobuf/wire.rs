//! The Protocol Buffers wire format: varints, tags and the four wire types
//! Eddy reads and writes (protobuf.dev, "Encoding").

/// Wire type of a field: varint.
pub(crate) const VARINT: u8 = 0;
/// Wire type: 8 bytes, little-endian.
pub(crate) const I64: u8 = 1;
/// Wire type: a varint length, then that many bytes.
pub(crate) const LEN: u8 = 2;
/// Wire type: 4 bytes, little-endian.
pub(crate) const I32: u8 = 5;

/// A field's value as it stands on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Raw<'a> {
    Varint(u64),
    I64(u64),
    Len(&'a [u8]),
    I32(u32),
}

/// Reads fields from a message's bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, at: 0 }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.at >= self.buf.len()
    }

    /// Where the reader is (bytes read).
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        // most keys and small numbers are one byte
        if let Some(&b) = self.buf.get(self.at)
            && b < 0x80
        {
            self.at += 1;
            return Ok(u64::from(b));
        }
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.at) else {
                return Err("the message ends inside a varint".into());
            };
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("a varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "a field of {n} bytes runs past the end of the message ({} left)",
                    self.buf.len() - self.at
                )
            })?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    /// The next field: its number and value.
    #[inline]
    pub(crate) fn field(&mut self) -> Result<(u32, Raw<'a>), String> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| "a field number past 2^32".to_string())?;
        if number == 0 {
            return Err("field number 0 (not a protobuf message)".into());
        }
        let raw = match (key & 7) as u8 {
            VARINT => Raw::Varint(self.varint()?),
            I64 => Raw::I64(u64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            )),
            LEN => {
                let n = usize::try_from(self.varint()?).map_err(|_| "a length past usize")?;
                Raw::Len(self.take(n)?)
            }
            I32 => Raw::I32(u32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            )),
            w => {
                return Err(format!(
                    "wire type {w} of field {number} (groups are not supported)"
                ));
            }
        };
        Ok((number, raw))
    }
}

/// Appends a varint.
pub(crate) fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a field's key.
pub(crate) fn put_key(number: u32, wire: u8, out: &mut Vec<u8>) {
    put_varint((u64::from(number) << 3) | u64::from(wire), out);
}

/// Appends a length-delimited field.
pub(crate) fn put_len(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    put_key(number, LEN, out);
    put_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// ZigZag-decodes a `sint32`/`sint64` varint.
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// ZigZag-encodes for `sint32`/`sint64`.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_back_what_was_written() {
        let mut m = Vec::new();
        put_key(1, VARINT, &mut m);
        put_varint(300, &mut m);
        put_len(2, b"hi", &mut m);
        put_key(3, I64, &mut m);
        m.extend_from_slice(&1.5f64.to_le_bytes());
        put_key(4, I32, &mut m);
        m.extend_from_slice(&7u32.to_le_bytes());
        // the protobuf.dev example: field 1 = 150 is 08 96 01
        assert_eq!(&m[..3], &[0x08, 0xac, 0x02]);
        let mut r = Reader::new(&m);
        assert_eq!(r.field().unwrap(), (1, Raw::Varint(300)));
        assert_eq!(r.field().unwrap(), (2, Raw::Len(b"hi")));
        assert_eq!(r.field().unwrap(), (3, Raw::I64(1.5f64.to_bits())));
        assert_eq!(r.field().unwrap(), (4, Raw::I32(7)));
        assert!(r.at_end());
        assert_eq!(unzigzag(zigzag(-3)), -3);
        assert_eq!(zigzag(-1), 1);
        assert!(
            Reader::new(&[0x0a, 0x05, 1])
                .field()
                .unwrap_err()
                .contains("past the end")
        );
        assert!(
            Reader::new(&[0x08, 0x80])
                .field()
                .unwrap_err()
                .contains("inside a varint")
        );
        assert!(
            Reader::new(&[0x0b])
                .field()
                .unwrap_err()
                .contains("wire type 3")
        );
    }
}
