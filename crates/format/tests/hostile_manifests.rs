//! Hostile manifests: the parser never panics, whatever the bytes, and refuses absurd
//! nesting with an error instead of exhausting the stack. (A cargo-fuzz target would run
//! the same property for longer; this runs in every test.)

use proptest::prelude::*;
use rewind_format::Manifest;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../fixtures/v1/{name}/savepoint/_manifest.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

const FIXTURES: [&str; 4] = [
    "keyed-primitive",
    "operator-state-sources",
    "struct-list-map",
    "two-operators",
];

#[test]
fn every_fixture_parses() {
    for name in FIXTURES {
        Manifest::from_json(&fixture(name)).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Bit flips, truncations and splices of real manifests: Ok or Err, never a panic;
    /// whatever parses re-serializes and parses again to the same manifest.
    #[test]
    fn mutated_manifests_never_panic(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
        splice in proptest::option::of((any::<usize>(), "[\\[\\]{}\",:0-9a-z.\\-]{0,12}")),
    ) {
        let mut bytes = fixture(FIXTURES[which]);
        for (at, bit) in flips {
            let i = at % bytes.len();
            bytes[i] ^= 1 << (bit % 8);
        }
        if let Some((at, text)) = splice {
            let i = at % bytes.len();
            bytes.splice(i..i, text.bytes());
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        if let Ok(m) = Manifest::from_json(&bytes) {
            let again = Manifest::from_json(&m.to_json()).unwrap();
            prop_assert_eq!(again.to_json(), m.to_json());
        }
    }

    /// Arbitrary bytes.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Manifest::from_json(&bytes);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [1_000usize, 100_000] {
        let mut text = String::from(r#"{"format":"rewind-savepoint","x":"#);
        text.push_str(&"[".repeat(depth));
        text.push_str(&"]".repeat(depth));
        text.push('}');
        assert!(Manifest::from_json(text.as_bytes()).is_err());
    }
}
