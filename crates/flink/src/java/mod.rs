//! Java's `DataInput` and `DataOutput`, the byte vocabulary of every Flink structure:
//! big-endian integers, `writeUTF` strings (modified UTF-8) and Flink's own string
//! encoding. Reading is bounds-checked so no allocation is sized by an untrusted length;
//! writing refuses what Java could not read back.

mod read;
mod write;

#[cfg(test)]
pub(crate) use read::flipped;
pub(crate) use read::{Parse, ParseError, Reader};
pub(crate) use write::Out;
