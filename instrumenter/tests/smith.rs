//! Seeded stand-in for the cargo-fuzz target (`fuzz/`): wasm-smith modules with random
//! policies over their own imports. Weaving must either fail with an error or produce a
//! module that validates, and must never panic.
//!
//! `IRM_SMITH_SEEDS=N` runs N seeds (default 200, enough for CI).
#[path = "smith/gen.rs"]
mod gen;

use arbitrary::Unstructured;
use gen::{case, check, Outcome};

/// Deterministic bytes for `seed` (splitmix64), so a failing seed can be rerun.
fn bytes_for(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// `IRM_SMITH_SEEDS`, default 200.
fn seeds() -> u64 {
    std::env::var("IRM_SMITH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

#[test]
fn weaving_random_modules_and_policies_never_panics_and_output_validates() {
    let seeds = seeds();
    let (mut woven, mut refused, mut invalid, mut events) = (0, 0, 0, 0);
    for seed in 0..seeds {
        let data = bytes_for(seed, 4096 + (seed as usize % 7) * 1024);
        let mut u = Unstructured::new(&data);
        let Ok(case) = case(&mut u) else { continue };
        events += case.program.events.len();
        let outcome = std::panic::catch_unwind(|| check(&case))
            .unwrap_or_else(|_| panic!("seed {seed}: the weaver panicked on {case:?}"));
        match outcome {
            Ok(Outcome::Woven) => woven += 1,
            Ok(Outcome::Refused) => refused += 1,
            Ok(Outcome::InputInvalid) => invalid += 1,
            Err(e) => panic!("seed {seed}: {e}\n{:?}", case.program),
        }
    }
    eprintln!(
        "smith: {seeds} seeds, {woven} woven and valid, {refused} refused, {invalid} inputs \
         invalid, {events} events in all"
    );
    assert!(
        woven > 0,
        "no seed produced a woven module; the generator is too narrow"
    );
}

#[test]
fn weaving_random_components_and_policies_never_panics_and_output_validates() {
    let seeds = seeds();
    let (mut woven, mut refused, mut invalid, mut events) = (0, 0, 0, 0);
    for seed in 0..seeds {
        let data = bytes_for(seed ^ 0xC0FFEE, 4096 + (seed as usize % 7) * 1024);
        let mut u = Unstructured::new(&data);
        let Ok(case) = gen::component_case(&mut u) else {
            continue;
        };
        events += case.program.events.len();
        let outcome = std::panic::catch_unwind(|| check(&case))
            .unwrap_or_else(|_| panic!("seed {seed}: the weaver panicked on {case:?}"));
        match outcome {
            Ok(Outcome::Woven) => woven += 1,
            Ok(Outcome::Refused) => refused += 1,
            Ok(Outcome::InputInvalid) => invalid += 1,
            Err(e) => panic!("seed {seed}: {e}\n{:?}", case.program),
        }
    }
    eprintln!(
        "smith components: {seeds} seeds, {woven} woven and valid, {refused} refused, \
         {invalid} inputs invalid, {events} events on lowered imports in all"
    );
    assert!(woven > 0, "no seed produced a woven component");
}

#[test]
fn random_wirings_of_random_core_modules_are_woven_with_complete_mediation() {
    let seeds = seeds();
    let (mut woven, mut refused, mut events) = (0, 0, 0);
    let mut routes_seen = [0usize; 3];
    for seed in 0..seeds {
        let data = bytes_for(seed ^ 0x5EED_C0DE, 4096 + (seed as usize % 5) * 1024);
        let mut u = Unstructured::new(&data);
        let Ok((case, routes)) = gen::wired_component_case(&mut u) else {
            continue;
        };
        for r in &routes {
            routes_seen[*r as usize] += 1;
        }
        events += case.program.events.len();
        let options = instrumenter::WeaveOptions {
            host_hooks: case.host_hooks,
            ..Default::default()
        };
        let outcome = std::panic::catch_unwind(|| {
            instrumenter::weave(&case.wasm, &case.program, &options).map_err(Box::new)
        })
        .unwrap_or_else(|_| panic!("seed {seed}: the weaver panicked on {case:?}"));
        match outcome {
            Err(e) => {
                if std::env::var_os("IRM_SMITH_REASONS").is_some() {
                    eprintln!("seed {seed}: refused: {e}");
                }
                refused += 1
            }
            Ok(w) => {
                let features = wasmparser::WasmFeatures::default();
                if let Err(e) =
                    wasmparser::Validator::new_with_features(features).validate_all(&w.wasm)
                {
                    panic!("seed {seed}: the woven component does not validate: {e}");
                }
                if let Err(e) = gen::check_mediation(&w.wasm, &case.program) {
                    panic!("seed {seed}: {e}\nroutes {routes:?}\n{:?}", case.program);
                }
                // The checker is not vacuous: on the input, every monitored lowering is
                // reachable, so it must complain whenever something is monitored.
                if w.report.component.as_ref().is_some_and(|c| c.lowerings > 0) {
                    assert!(
                        gen::check_mediation(&case.wasm, &case.program).is_err(),
                        "seed {seed}: the mediation check accepts the unwoven component"
                    );
                }
                woven += 1;
            }
        }
    }
    eprintln!(
        "wired components: {seeds} seeds, {woven} woven with complete mediation, {refused} \
         refused, {events} events; routes early/relay/late: {routes_seen:?}"
    );
    assert!(woven > 0, "no seed produced a woven component");
}

#[path = "../../certifier/tests/mutants/mod.rs"]
mod mutants;

/// Replays `fuzz/regressions/certify_smith/` as the `certify_smith` target runs an input:
/// the woven module certifies, and the mutant the input picks is refused by the default
/// sampling unless 5,000 traces also find it enforcing.
#[test]
fn fixed_certify_smith_findings_stay_fixed() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/regressions/certify_smith"
    );
    let mut replayed = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let mut u = Unstructured::new(&data);
        let case = case(&mut u).expect("the input still makes a case");
        let program = &case.program;
        let woven = instrumenter::weave(&case.wasm, program, &Default::default())
            .expect("the input still weaves")
            .wasm;
        if let Err(f) = certifier::certify(&woven, program, &[]) {
            panic!(
                "{}: the woven module does not certify: {}",
                path.display(),
                f[0]
            );
        }
        let all = mutants::mutants(&woven).0;
        let pick = u.arbitrary::<u32>().unwrap_or(0) as usize % all.len();
        let m = &all[pick];
        if certifier::certify(&m.wasm, program, &[]).is_ok() {
            let confirmed = certifier::certify_sampling(&m.wasm, program, &[], 5000);
            assert!(
                confirmed.is_ok(),
                "{}: the default sampling certifies mutant {:?} ({}), 5,000 traces refuse it: {}",
                path.display(),
                m.kind,
                m.what,
                confirmed.unwrap_err()[0]
            );
        }
        replayed += 1;
    }
    assert!(replayed > 0, "no finding in {dir}");
}
