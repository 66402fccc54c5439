//! The mutation test generator itself (not the certifier): on real woven output of shipped
//! policies it produces every kind of mutant, and only valid, changed, reproducible ones.
mod mutants;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use instrumenter::{weave, WeaveOptions};
use mutants::{Kind, KINDS};

/// Every way an import can be referenced: calls from several functions, a tail call, a
/// `ref.func` in code, element segments (function indices and expressions), global and
/// table initialisers.
const APP: &str = include_str!("mutants/app.wat");

const POLICIES: [&str; 6] = [
    "no-exfil.pol",
    "no-secrets.pol",
    "max-windows.pol",
    "tmp-writes.pol",
    "audit-files.pol",
    "chinese-wall.pol",
];

/// The app woven with each policy, once for all tests.
fn woven() -> &'static [(&'static str, Vec<u8>)] {
    static WOVEN: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    WOVEN.get_or_init(|| {
        let app = wat::parse_str(APP).unwrap();
        POLICIES
            .iter()
            .map(|&policy| {
                let path = format!("{}/../policies/{policy}", env!("CARGO_MANIFEST_DIR"));
                let program = policy_lang::compile_files(&[path]).unwrap().program;
                let woven = weave(&app, &program, &WeaveOptions::default())
                    .unwrap_or_else(|e| panic!("{policy}: {e}"));
                (policy, woven.wasm)
            })
            .collect()
    })
}

#[test]
fn re_encoding_without_an_edit_gives_back_the_woven_module() {
    for (policy, wasm) in woven() {
        assert!(mutants::roundtrip(wasm) == *wasm, "{policy}");
    }
}

#[test]
fn every_kind_but_start_is_produced_and_every_mutant_is_valid_and_changed() {
    let mut produced = BTreeSet::new();
    for (policy, wasm) in woven() {
        let (ms, stats) = mutants::mutants(wasm);
        eprintln!("{policy}:");
        for (kind, c) in &stats.per_kind {
            eprintln!(
                "  {kind:?}: {} sites, {} produced, {} invalid",
                c.sites, c.produced, c.invalid
            );
            assert!(c.produced + c.invalid <= c.sites.min(mutants::CAP));
        }
        assert_eq!(
            ms.len(),
            stats.per_kind.values().map(|c| c.produced).sum::<usize>()
        );
        for m in &ms {
            wasmparser::Validator::new_with_features(instrumenter::features())
                .validate_all(&m.wasm)
                .unwrap_or_else(|e| panic!("{policy}: {:?} {}: {e}", m.kind, m.what));
            assert_ne!(&m.wasm, wasm, "{policy}: {:?} {}", m.kind, m.what);
            produced.insert(m.kind);
        }
    }
    let missing: Vec<Kind> = KINDS
        .into_iter()
        .filter(|k| *k != Kind::StartToImport && !produced.contains(k))
        .collect();
    assert!(missing.is_empty(), "never produced: {missing:?}");
}

#[test]
fn mutation_is_deterministic_and_each_mutant_is_distinct() {
    for (policy, wasm) in woven().iter().take(3) {
        let (a, sa) = mutants::mutants(wasm);
        let (b, sb) = mutants::mutants(wasm);
        assert_eq!(sa, sb, "{policy}");
        let a: Vec<_> = a.iter().map(|m| (m.kind, &m.what, &m.wasm)).collect();
        let b: Vec<_> = b.iter().map(|m| (m.kind, &m.what, &m.wasm)).collect();
        assert_eq!(a, b, "{policy}");
        let distinct: BTreeSet<_> = a.iter().map(|(_, _, w)| w).collect();
        assert_eq!(distinct.len(), a.len(), "{policy}: two mutants are equal");
    }
}

#[test]
fn the_start_function_can_be_a_monitored_import_without_parameters_or_results() {
    let program = policy_lang::compile(&[policy_lang::Source {
        name: "tick.pol".into(),
        text: "event tick = env.tick();
               policy ticks { var n: 0..3 = 0; on tick when n >= 2 -> deny \"too many\"; on tick do n += 1; }"
            .into(),
    }])
    .expect("the policy compiles")
    .program;
    let app = wat::parse_str(
        r#"(module (import "env" "tick" (func $tick)) (memory (export "memory") 1)
             (func $main (call $tick)) (start $main))"#,
    )
    .unwrap();
    let woven = weave(&app, &program, &WeaveOptions::default())
        .unwrap()
        .wasm;
    let (ms, stats) = mutants::mutants(&woven);
    assert_eq!(stats.get(Kind::StartToImport).produced, 1, "{stats:?}");
    let m = ms.iter().find(|m| m.kind == Kind::StartToImport).unwrap();
    assert_eq!(m.what, "start = import 0");
}

#[test]
fn a_start_function_of_an_import_with_parameters_is_an_invalid_candidate() {
    let (ms, stats) = mutants::mutants(&woven()[0].1);
    let c = stats.get(Kind::StartToImport);
    assert!(c.sites > 0 && c.produced == 0 && c.invalid > 0, "{c:?}");
    assert!(ms.iter().all(|m| m.kind != Kind::StartToImport));
}
