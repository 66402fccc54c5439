//! wasm-smith components with random policies over the functions they import and lower:
//! weaving either fails with an error or yields a component that validates; never a
//! panic.
//!
//! Run: `cd instrumenter/fuzz && cargo +nightly fuzz run weave_component_smith`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/smith/gen.rs"]
mod gen;

fuzz_target!(|data: &[u8]| {
    let mut u = arbitrary::Unstructured::new(data);
    let Ok(case) = gen::component_case(&mut u) else { return };
    if let Err(e) = gen::check(&case) {
        panic!("{e}\nprogram: {:?}", case.program);
    }
});
