//! A subtask's operator (non-keyed) state stream: a header naming each state's
//! serializers (`OperatorBackendSerializationProxy`), then every element's bytes as the
//! state's serializer wrote them, at the offsets `_metadata` lists. Read element by
//! element into binary values ([`read`]) and written back from them ([`write`]).

mod read;
mod write;

pub(crate) use read::{elements, serializers};
pub(crate) use write::{StateElements, stream};
