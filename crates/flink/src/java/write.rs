//! A big-endian writer (Java `DataOutput`), the inverse of [`super::Reader`].

#[derive(Debug, Default)]
pub(crate) struct Out {
    pub buf: Vec<u8>,
}

impl Out {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }
    pub fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// A length or count as Java's `writeInt`, refused past `i32::MAX`.
    pub fn len_i32(&mut self, n: usize) -> Result<(), String> {
        let n = i32::try_from(n).map_err(|_| format!("{n} items do not fit a Java int"))?;
        self.i32(n);
        Ok(())
    }

    /// Java `writeUTF`: u16 byte length, then modified UTF-8 (NUL and characters past the
    /// BMP as Java writes them).
    pub fn utf(&mut self, s: &str) -> Result<(), String> {
        let mut raw = Vec::with_capacity(s.len());
        for unit in s.encode_utf16() {
            match unit {
                1..=0x7F => raw.push(unit as u8),
                0 | 0x80..=0x7FF => {
                    raw.push(0xC0 | ((unit >> 6) & 0x1F) as u8);
                    raw.push(0x80 | (unit & 0x3F) as u8);
                }
                _ => {
                    raw.push(0xE0 | ((unit >> 12) & 0x0F) as u8);
                    raw.push(0x80 | ((unit >> 6) & 0x3F) as u8);
                    raw.push(0x80 | (unit & 0x3F) as u8);
                }
            }
        }
        let n = u16::try_from(raw.len())
            .map_err(|_| format!("a string of {} bytes is too long for writeUTF", raw.len()))?;
        self.u16(n);
        self.bytes(&raw);
        Ok(())
    }

    /// 7-bit groups, least significant first, high bit = more (Flink's `StringValue`).
    pub fn varint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// A `String` as Flink's `StringSerializer` writes it (`None` is null).
    pub fn flink_string(&mut self, s: Option<&str>) {
        let Some(s) = s else {
            self.varint(0);
            return;
        };
        let units: Vec<u16> = s.encode_utf16().collect();
        self.varint(units.len() as u32 + 1);
        for u in units {
            self.varint(u32::from(u));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::java::Reader;
    use crate::java::read::decode_modified_utf8;

    #[test]
    fn strings_read_back() {
        for s in ["", "user-0", "é ü", "a\0b", "𝄞 clef", &"x".repeat(300)] {
            let mut o = Out::default();
            o.flink_string(Some(s));
            o.utf(s).unwrap();
            let mut r = Reader::new(&o.buf);
            assert_eq!(r.flink_string().unwrap().as_deref(), Some(s));
            assert_eq!(r.utf().unwrap(), s);
            assert!(r.is_empty());
        }
        assert_eq!(decode_modified_utf8(&[0xC0, 0x80]), "\0");
    }
}
