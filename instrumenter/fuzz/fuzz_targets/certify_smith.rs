//! wasm-smith modules with random policies over their own imports, as in `weave_smith`:
//! a module the weaver produces must certify; a mutant of it (one simulated weaver bug
//! from the certifier's test generator, chosen by the input) must not certify unless a
//! much larger sample of traces still finds it enforcing the policies.
//!
//! Run: `cd instrumenter/fuzz && cargo +nightly fuzz run certify_smith`, or on stable
//! `cargo build --release --bins` and `target/release/certify_smith CORPUS_DIR`.
//! With `CERTIFY_SMITH_DUMP=DIR` set, a failing case writes its modules (`input.wasm`,
//! `woven.wasm`, `mutant.wasm`) into DIR before panicking. With
//! `CERTIFY_SMITH_KNOWN=TEXT|TEXT...` set, a woven module whose findings all contain one
//! of the texts is skipped, not a crash: a known refusal does not stop the run.
#![no_main]

use instrumenter::{weave, WeaveOptions};
use libfuzzer_sys::fuzz_target;
use wasmparser::{Validator, WasmFeatures};

#[path = "../../tests/smith/gen.rs"]
#[allow(dead_code)]
mod gen;

#[path = "../../../certifier/tests/mutants/mod.rs"]
mod mutants;

/// Traces sampled to confirm that a mutant which certified is equivalent.
const CONFIRM_TRACES: usize = 5000;

fn shown(findings: &[certifier::Finding]) -> String {
    let lines: Vec<String> = findings.iter().map(|f| format!("  {f}")).collect();
    lines.join("\n")
}

/// Writes `wasm` as DIR/`name` when `CERTIFY_SMITH_DUMP=DIR` is set.
fn dump(name: &str, wasm: &[u8]) {
    if let Some(dir) = std::env::var_os("CERTIFY_SMITH_DUMP") {
        let _ = std::fs::write(std::path::Path::new(&dir).join(name), wasm);
    }
}

/// Whether every finding contains one of the texts in `CERTIFY_SMITH_KNOWN`.
fn known(findings: &[certifier::Finding]) -> bool {
    let Ok(texts) = std::env::var("CERTIFY_SMITH_KNOWN") else {
        return false;
    };
    let texts: Vec<&str> = texts.split('|').filter(|t| !t.is_empty()).collect();
    let is_known = |f: &certifier::Finding| texts.iter().any(|t| f.message.contains(t));
    !texts.is_empty() && findings.iter().all(is_known)
}

fuzz_target!(|data: &[u8]| {
    let mut u = arbitrary::Unstructured::new(data);
    let Ok(case) = gen::case(&mut u) else { return };
    if Validator::new_with_features(WasmFeatures::default())
        .validate_all(&case.wasm)
        .is_err()
    {
        return;
    }
    // Default options (no host hooks), as the mutation generator expects.
    let Ok(woven) = weave(&case.wasm, &case.program, &WeaveOptions::default()) else {
        return;
    };
    let program = &case.program;
    if let Err(findings) = certifier::certify(&woven.wasm, program, &[]) {
        if known(&findings) {
            return;
        }
        dump("input.wasm", &case.wasm);
        dump("woven.wasm", &woven.wasm);
        panic!(
            "the woven module does not certify:\n{}\nprogram: {program:?}",
            shown(&findings)
        );
    }
    let (all, _) = mutants::mutants(&woven.wasm);
    if all.is_empty() {
        return;
    }
    let pick = u.arbitrary::<u32>().unwrap_or(0) as usize % all.len();
    let m = &all[pick];
    if certifier::certify(&m.wasm, program, &[]).is_err() {
        return;
    }
    if let Err(findings) = certifier::certify_sampling(&m.wasm, program, &[], CONFIRM_TRACES) {
        dump("input.wasm", &case.wasm);
        dump("woven.wasm", &woven.wasm);
        dump("mutant.wasm", &m.wasm);
        panic!(
            "the default sampling missed a mutant ({:?}: {}); with {CONFIRM_TRACES} traces:\n{}\n\
             program: {program:?}",
            m.kind,
            m.what,
            shown(&findings)
        );
    }
});
