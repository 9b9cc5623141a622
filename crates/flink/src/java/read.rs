//! A bounds-checked big-endian reader (Java `DataInput`): every length read from the
//! input is checked against what is left, so no allocation is sized by an untrusted number.

/// Where parsing stopped and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub offset: usize,
    pub message: String,
}

pub(crate) type Parse<T> = Result<T, ParseError>;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn at(buf: &'a [u8], pos: usize) -> Parse<Self> {
        if pos > buf.len() {
            return Err(ParseError {
                offset: pos,
                message: format!("offset {pos} is past the end ({} bytes)", buf.len()),
            });
        }
        Ok(Reader { buf, pos })
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The bytes read since position `start`.
    pub fn consumed_since(&self, start: usize) -> &'a [u8] {
        &self.buf[start.min(self.pos)..self.pos]
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn fail<T>(&self, message: impl Into<String>) -> Parse<T> {
        Err(ParseError {
            offset: self.pos,
            message: message.into(),
        })
    }

    pub fn bytes(&mut self, n: usize) -> Parse<&'a [u8]> {
        if n > self.remaining() {
            return self.fail(format!(
                "truncated: {n} bytes needed, {} left",
                self.remaining()
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Parse<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Parse<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub fn bool(&mut self) -> Parse<bool> {
        Ok(self.u8()? != 0)
    }
    pub fn i8(&mut self) -> Parse<i8> {
        Ok(i8::from_be_bytes(self.array()?))
    }
    pub fn i16(&mut self) -> Parse<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    pub fn u16(&mut self) -> Parse<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Parse<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Parse<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    pub fn f32(&mut self) -> Parse<f32> {
        Ok(f32::from_be_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Parse<f64> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    /// A count or length (`i32`) that must be non-negative and, at `min_size` bytes per
    /// item, fit in what is left.
    pub fn count(&mut self, min_size: usize, what: &str) -> Parse<usize> {
        let n = self.i32()?;
        if n < 0 {
            return self.fail(format!("negative {what} {n}"));
        }
        let n = n as usize;
        if n.saturating_mul(min_size.max(1)) > self.remaining() && min_size > 0 {
            return self.fail(format!(
                "{what} {n} does not fit in the {} bytes left",
                self.remaining()
            ));
        }
        Ok(n)
    }

    /// Java `writeUTF`: u16 byte length, then modified UTF-8 (decoded leniently).
    pub fn utf(&mut self) -> Parse<String> {
        let n = self.u16()? as usize;
        let raw = self.bytes(n)?;
        Ok(decode_modified_utf8(raw))
    }

    /// Flink `StringValue` as `StringSerializer` writes it: varint length + 1 (0 = null),
    /// then one varint per UTF-16 unit.
    pub fn flink_string(&mut self) -> Parse<Option<String>> {
        let n = self.varint()?;
        if n == 0 {
            return Ok(None);
        }
        let units = (n - 1) as usize;
        if units > self.remaining() {
            return self.fail(format!("string of {units} characters does not fit"));
        }
        let mut out = Vec::with_capacity(units);
        for _ in 0..units {
            let u = self.varint()?;
            out.push(u16::try_from(u).or_else(|_| self.fail("string character out of range"))?);
        }
        Ok(Some(String::from_utf16_lossy(&out)))
    }

    /// 7-bit groups, least significant first, high bit = more.
    fn varint(&mut self) -> Parse<u32> {
        let mut value: u32 = 0;
        let mut shift = 0;
        loop {
            let b = self.u8()?;
            if shift > 28 {
                return self.fail("varint too long");
            }
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }
}

/// Java's modified UTF-8 (NUL as C0 80, surrogates as 3-byte sequences), leniently.
pub(crate) fn decode_modified_utf8(raw: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(raw) {
        return s.to_string();
    }
    let mut units: Vec<u16> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        let (unit, len) = if b < 0x80 {
            (u16::from(b), 1)
        } else if b & 0xE0 == 0xC0 && i + 1 < raw.len() {
            ((u16::from(b & 0x1F) << 6) | u16::from(raw[i + 1] & 0x3F), 2)
        } else if b & 0xF0 == 0xE0 && i + 2 < raw.len() {
            (
                (u16::from(b & 0x0F) << 12)
                    | (u16::from(raw[i + 1] & 0x3F) << 6)
                    | u16::from(raw[i + 2] & 0x3F),
                3,
            )
        } else {
            (0xFFFD, 1)
        };
        units.push(unit);
        i += len;
    }
    String::from_utf16_lossy(&units)
}

/// Copies of `bytes` with one byte flipped each, at places a seeded xorshift picks: the
/// damage the parsers' robustness tests feed them.
#[cfg(test)]
pub(crate) fn flipped(bytes: &[u8], seed: u64, copies: usize) -> Vec<Vec<u8>> {
    let mut state = seed | 1;
    (0..copies)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut damaged = bytes.to_vec();
            let at = (state % damaged.len().max(1) as u64) as usize;
            if let Some(b) = damaged.get_mut(at) {
                *b ^= (state >> 32) as u8 | 1;
            }
            damaged
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_refuses_overruns() {
        let mut r = Reader::new(&[0, 0, 0, 7, 0x80]);
        assert_eq!(r.i32().unwrap(), 7);
        assert!(r.i32().is_err());
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(
            r.count(1, "items")
                .unwrap_err()
                .message
                .contains("does not fit")
        );
    }

    #[test]
    fn flink_strings() {
        // "user-0": length 6 -> varint 7, then ASCII units.
        let mut bytes = vec![7u8];
        bytes.extend(b"user-0");
        assert_eq!(
            Reader::new(&bytes).flink_string().unwrap().as_deref(),
            Some("user-0")
        );
        assert_eq!(Reader::new(&[0]).flink_string().unwrap(), None);
        assert_eq!(decode_modified_utf8(&[0x61, 0xC0, 0x80]), "a\0");
    }
}
