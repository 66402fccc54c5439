//! The trace judges' driver of every shipped policy, woven as `irm weave` weaves, certifies
//! against the policy with the policy's own traces: the woven judge runs a module that
//! the independent checker also accepts.

use std::path::Path;

#[test]
fn every_shipped_policys_woven_driver_certifies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "traces") {
            continue;
        }
        let loaded = policy_lang::trace::load_trace_file(&path).unwrap();
        let program = &loaded.compiled.program;
        let samples: Vec<certifier::Sample> = loaded
            .file
            .traces
            .iter()
            .map(|t| (t.world.clone(), t.events()))
            .collect();
        // The driver imports every event of the program, whatever the trace.
        let first = loaded.file.traces[0].events();
        let driver = monitor_rt::judge::driver(program, &first).unwrap();
        let woven = instrumenter::weave(
            &driver.wasm,
            program,
            &instrumenter::WeaveOptions::default(),
        )
        .unwrap();
        if let Err(f) = certifier::certify(&woven.wasm, program, &samples) {
            panic!(
                "{}: {}",
                path.display(),
                f.iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "{checked} trace files");
}
