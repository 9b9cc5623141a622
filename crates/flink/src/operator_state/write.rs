//! Writing an operator state stream: the header as the import kept it, then every
//! element, with the offsets `_metadata` records.

use crate::java::Out;
use crate::metadata::{Distribution, OperatorStateOffsets};

/// One state's elements for one subtask.
pub(crate) struct StateElements<'a> {
    /// Flink's state name.
    pub name: &'a str,
    /// How Flink redistributes it on restore.
    pub distribution: Distribution,
    /// Each element's bytes, as the state's serializer wrote them.
    pub elements: Vec<&'a [u8]>,
}

/// The stream (`header`, then each state's elements in turn) and where each state's
/// elements start in it.
pub(crate) fn stream(
    header: &[u8],
    states: &[StateElements<'_>],
) -> (Vec<u8>, Vec<OperatorStateOffsets>) {
    let mut o = Out {
        buf: header.to_vec(),
    };
    let offsets = states
        .iter()
        .map(|state| {
            let offsets = state
                .elements
                .iter()
                .map(|element| {
                    let at = o.buf.len() as i64;
                    o.bytes(element);
                    at
                })
                .collect();
            OperatorStateOffsets {
                name: state.name.to_string(),
                distribution: state.distribution,
                offsets,
            }
        })
        .collect();
    (o.buf, offsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{OperatorStateHandle, StreamHandle};
    use crate::operator_state::elements;

    #[test]
    fn written_elements_read_back() {
        let states = [
            StateElements {
                name: "a",
                distribution: Distribution::Split,
                elements: vec![b"one", b"two", b"three"],
            },
            StateElements {
                name: "b",
                distribution: Distribution::Union,
                elements: vec![b"x"],
            },
        ];
        let (bytes, offsets) = stream(b"HEAD", &states);
        assert_eq!(bytes, b"HEADonetwothreex");
        let handle = OperatorStateHandle {
            states: offsets,
            delegate: StreamHandle::EmptySegment,
        };
        let read = elements(&bytes, &handle);
        assert_eq!(read.header, b"HEAD");
        let want: Vec<Vec<&[u8]>> = vec![vec![b"one", b"two", b"three"], vec![b"x"]];
        assert_eq!(read.states, want);
        assert_eq!(handle.states[1].distribution, Distribution::Union);
    }
}
