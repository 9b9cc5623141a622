//! `_manifest.json` from untrusted bytes: parsed and checked, an error or a manifest,
//! never a panic and never an allocation sized by a number in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = rewind_format::Manifest::from_json(data) {
        let _ = manifest.problems();
        let _ = manifest.to_json();
    }
});
