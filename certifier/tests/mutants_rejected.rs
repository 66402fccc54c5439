//! The certifier against simulated weaver bugs: every mutant of a woven module is refused
//! with a reason that names what is wrong. A mutant that survives is run again with many
//! more traces (a differential run against the interpreter): refused then, the default
//! sampling missed it and the test fails; still certified, it is reported as equivalent.
mod mutants;

use instrumenter::{weave, WeaveOptions};
use mutants::{mutants, Kind};

const APP: &str = include_str!("mutants/app.wat");

/// Traces of the differential run a surviving mutant gets.
const DIFFERENTIAL: usize = 6_000;

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
        | Kind::WrongMemory
        | Kind::StateInHostMemory => &[
            "decides differently",
            "trapped unexpectedly",
            "not understood",
            "made a call",
            "host trap",
            "does not stay denied",
        ],
    }
}

/// What became of each mutant of one policy's woven module.
#[derive(Default)]
struct Tally {
    refused: usize,
    equivalent: Vec<String>,
    misnamed: Vec<String>,
    missed: Vec<String>,
}

fn tally(app: &[u8], policy: &str) -> Tally {
    let path = format!("{}/../policies/{policy}", env!("CARGO_MANIFEST_DIR"));
    let program = policy_lang::compile_files(&[path]).unwrap().program;
    let woven = weave(app, &program, &WeaveOptions::default()).unwrap().wasm;
    if let Err(f) = certifier::certify(&woven, &program, &[]) {
        panic!("{policy}: the unmutated module is refused: {}", f[0]);
    }
    let mut t = Tally::default();
    for m in mutants(&woven).0 {
        let name = format!("{policy} {:?} {}", m.kind, m.what);
        match certifier::certify(&m.wasm, &program, &[]) {
            Err(findings) => {
                t.refused += 1;
                let words = named(m.kind);
                if !findings
                    .iter()
                    .any(|f| words.iter().any(|w| f.message.contains(w)))
                {
                    t.misnamed.push(format!("{name}: {}", findings[0]));
                }
            }
            Ok(_) => match certifier::certify_sampling(&m.wasm, &program, &[], DIFFERENTIAL) {
                Err(findings) => t.missed.push(format!("{name}: {}", findings[0])),
                Ok(_) => t.equivalent.push(name),
            },
        }
    }
    t
}

#[test]
fn every_mutant_of_a_woven_module_is_refused_with_a_reason_naming_the_fault() {
    let app = wat::parse_str(APP).unwrap();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = POLICIES
            .iter()
            .map(|policy| {
                let app = &app;
                scope.spawn(move || tally(app, policy))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused: usize = tallies.iter().map(|t| t.refused).sum();
    let all = |f: fn(&Tally) -> &Vec<String>| -> Vec<String> {
        tallies.iter().flat_map(|t| f(t).clone()).collect()
    };
    let (equivalent, misnamed, missed) = (
        all(|t| &t.equivalent),
        all(|t| &t.misnamed),
        all(|t| &t.missed),
    );
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
