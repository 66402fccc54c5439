//! The certifier against simulated weaver bugs: every mutant of a woven module is refused
//! with a reason that names what is wrong. A mutant that survives is run again with many
//! more traces (a differential run against the interpreter): refused then, the default
//! sampling missed it and the test fails; still certified, it is reported as equivalent.
mod mutants;

use instrumenter::{weave, WeaveOptions};
use mutants::{mutants, Kind};

const APP: &str = include_str!("mutants/app.wat");

/// Traces of the differential run a surviving mutant gets.
const DIFFERENTIAL: usize = 10_000;

const POLICIES: [&str; 6] = [
    "no-exfil.pol",
    "no-secrets.pol",
    "max-windows.pol",
    "tmp-writes.pol",
    "audit-files.pol",
    "chinese-wall.pol",
];

/// Words a finding about `kind` must contain (any of them).
fn named(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::CallToImport => &["monitored import", "decides differently", "monitors import"],
        Kind::ElementToImport
        | Kind::GlobalInitToImport
        | Kind::TableInitToImport
        | Kind::ExportImport
        | Kind::StartToImport => &["monitored import"],
        Kind::MonitorGlobalWrittenOutside => &["monitor global"],
        Kind::MonitorGlobalExportedMutable => &["monitor global"],
        Kind::ComparisonFlipped
        | Kind::ConstantOffByOne
        | Kind::StateUpdateSkipped
        | Kind::DenyToAllow
        | Kind::WrongMemory => &[
            "decides differently",
            "trapped unexpectedly",
            "not understood",
            "made a call",
            "host trap",
        ],
    }
}

#[test]
fn every_mutant_of_a_woven_module_is_refused_with_a_reason_naming_the_fault() {
    let app = wat::parse_str(APP).unwrap();
    let mut refused = 0;
    let mut equivalent = Vec::new();
    let mut misnamed = Vec::new();
    let mut missed = Vec::new();
    for policy in POLICIES {
        let path = format!("{}/../policies/{policy}", env!("CARGO_MANIFEST_DIR"));
        let program = policy_lang::compile_files(&[path]).unwrap().program;
        let woven = weave(&app, &program, &WeaveOptions::default())
            .unwrap()
            .wasm;
        if let Err(f) = certifier::certify(&woven, &program, &[]) {
            panic!("{policy}: the unmutated module is refused: {}", f[0]);
        }
        let (all, _) = mutants(&woven);
        for m in all {
            let t = std::time::Instant::now();
            let outcome = certifier::certify(&m.wasm, &program, &[]);
            eprintln!(
                "{policy} {:?} {}: {} in {:?}",
                m.kind,
                m.what,
                if outcome.is_ok() {
                    "certified"
                } else {
                    "refused"
                },
                t.elapsed()
            );
            match outcome {
                Err(findings) => {
                    refused += 1;
                    let words = named(m.kind);
                    if !findings
                        .iter()
                        .any(|f| words.iter().any(|w| f.message.contains(w)))
                    {
                        misnamed.push(format!("{policy} {:?} {}: {}", m.kind, m.what, findings[0]));
                    }
                }
                Ok(_) => match certifier::certify_sampling(&m.wasm, &program, &[], DIFFERENTIAL) {
                    Err(findings) => {
                        missed.push(format!("{policy} {:?} {}: {}", m.kind, m.what, findings[0]))
                    }
                    Ok(_) => equivalent.push(format!("{policy} {:?} {}", m.kind, m.what)),
                },
            }
        }
    }
    eprintln!(
        "{refused} mutants refused; {} equivalent by a differential run of {DIFFERENTIAL} traces:\n  {}",
        equivalent.len(),
        equivalent.join("\n  ")
    );
    assert!(
        missed.is_empty(),
        "refused only with more traces:\n{}",
        missed.join("\n")
    );
    assert!(
        misnamed.is_empty(),
        "refused for another reason:\n{}",
        misnamed.join("\n")
    );
    assert!(refused > 0);
}
