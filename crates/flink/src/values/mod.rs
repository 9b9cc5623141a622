//! Values of Flink's built-in serializers: decoded straight into Arrow column builders
//! ([`read`], the import's hot path) and encoded from Arrow arrays ([`write`], the
//! inverse, so that what an import decoded encodes to the same bytes). Kryo values
//! (Flink 1.x writes Kryo 2.24, 2.x Kryo 5.6) belong here too.

mod read;
mod write;

pub(crate) use read::{Column, read, read_list_items};
pub(crate) use write::{list_items, write};
