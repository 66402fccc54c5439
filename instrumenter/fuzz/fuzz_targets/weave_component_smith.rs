//! Components with random policies over the functions they lower: wasm-smith core modules
//! behind random routes (direct, relayed through a core instance, through a shim table
//! filled after the module is instantiated) and wasm-smith components. Weaving either
//! fails with an error or yields a component that validates and in which every
//! reference to a monitored lowering is the monitor's (checked independently of the
//! weaver, `gen::check_mediation`); never a panic.
//!
//! Run: `cd instrumenter/fuzz && cargo +nightly fuzz run weave_component_smith`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/smith/gen.rs"]
mod gen;

fuzz_target!(|data: &[u8]| {
    let mut u = arbitrary::Unstructured::new(data);
    let Ok(wired) = u.arbitrary::<bool>() else { return };
    let case = if wired {
        match gen::wired_component_case(&mut u) {
            Ok((case, _)) => case,
            Err(_) => return,
        }
    } else {
        match gen::component_case(&mut u) {
            Ok(case) => case,
            Err(_) => return,
        }
    };
    if let Err(e) = gen::check(&case) {
        panic!("{e}\nprogram: {:?}", case.program);
    }
    let options = instrumenter::WeaveOptions {
        host_hooks: case.host_hooks,
        ..Default::default()
    };
    if let Ok(w) = instrumenter::weave(&case.wasm, &case.program, &options) {
        if let Err(e) = gen::check_mediation(&w.wasm, &case.program) {
            panic!("{e}\nprogram: {:?}", case.program);
        }
    }
});
