//! Semantic preservation on real programs of the corpus (icepll, resvg, cpython).
//!
//! Each test weaves a policy that audits every function import of the module (so every
//! WASI call goes through a wrapper), checks that the output validates, then runs the
//! original and the woven module the same way and compares stdout and the exit code (and
//! for resvg the PNG it writes). Audits go to stderr, which is not compared.
//!
//! The modules come from the corpus cache (`$IRM_CORPUS`, else `~/.cache/irm-corpus`,
//! filled by `scripts/fetch-corpus.sh`); without it the tests print a message and pass.
//! Compiled artifacts are cached under `<cache>/cwasm/`, keyed by the module's bytes and
//! the engine's compatibility hash, because cpython takes about a minute to compile.
mod common;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use common::audit_every_import;
use instrumenter::{weave, WeaveOptions};
use wasmtime::{Config, Engine, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

fn corpus_dir() -> PathBuf {
    match std::env::var_os("IRM_CORPUS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/irm-corpus"),
    }
}

/// The module's bytes, or `None` (with a message) when the corpus is not fetched.
fn corpus_module(name: &str) -> Option<Vec<u8>> {
    let path = corpus_dir().join("wasm").join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            eprintln!(
                "skipping: {} is absent; run scripts/fetch-corpus.sh to fetch the corpus",
                path.display()
            );
            None
        }
    }
}

fn engine() -> Engine {
    let mut config = Config::new();
    config.wasm_exceptions(true);
    // cpython needs a deep stack (8 MiB of wasm stack, per the corpus README).
    config.max_wasm_stack(8 << 20);
    // wasmtime refuses a wasm stack larger than the async fiber stack, even unused.
    config.async_stack_size(9 << 20);
    Engine::new(&config).unwrap()
}

/// Compiles `wasm`, reusing a cached artifact when this engine compiled it before.
fn compile(engine: &Engine, wasm: &[u8]) -> Module {
    let mut h = DefaultHasher::new();
    wasm.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    let dir = corpus_dir().join("cwasm");
    let path = dir.join(format!("{:016x}.cwasm", h.finish()));
    if path.exists() {
        // SAFETY: the file was written by `Module::serialize` of an engine with the same
        // compatibility hash (it is part of the file name) and nothing else writes there.
        if let Ok(m) = unsafe { Module::deserialize_file(engine, &path) } {
            return m;
        }
    }
    let module = Module::new(engine, wasm).expect("module compiles");
    if std::fs::create_dir_all(&dir).is_ok() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, module.serialize().unwrap()).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    module
}

/// The audit-everything hardened module; it must validate.
fn audited(wasm: &[u8]) -> Vec<u8> {
    let program = audit_every_import(wasm).expect("the module has function imports");
    let woven =
        weave(wasm, &program, &WeaveOptions::default()).unwrap_or_else(|e| panic!("weave: {e}"));
    wasmparser::Validator::new()
        .validate_all(&woven.wasm)
        .expect("the woven module validates");
    assert!(
        !woven.report.wrapped.is_empty(),
        "an audit-everything policy must wrap the module's imports"
    );
    if let Err(f) = certifier::certify(&woven.wasm, &program, &[]) {
        panic!("the woven module does not certify: {}", f[0]);
    }
    woven.wasm
}

#[derive(Debug, PartialEq, Eq)]
struct Ran {
    stdout: String,
    /// The exit code, or the trap message.
    exit: Result<i32, String>,
}

enum Entry {
    /// A command: `_start`.
    Command,
    /// A reactor: `_initialize`, then `run() -> i32`.
    Reactor,
}

fn run(
    engine: &Engine,
    module: &Module,
    args: &[&str],
    env: &[(&str, &str)],
    preopens: &[(&Path, &str)],
    entry: Entry,
) -> Ran {
    let stdout = MemoryOutputPipe::new(16 << 20);
    let stderr = MemoryOutputPipe::new(256 << 20);
    let mut wasi = WasiCtxBuilder::new();
    wasi.args(args)
        .envs(env)
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    for (host, guest) in preopens {
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite).unwrap();
    }
    let mut store: Store<WasiP1Ctx> = Store::new(engine, wasi.build_p1());
    let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |t| t).unwrap();
    // cpython's host-tool door; -1 means "no host tools here".
    linker
        .func_wrap("host", "call", |_: i32, _: i32, _: i32, _: i32| -> i32 {
            -1
        })
        .unwrap();
    let instance = linker
        .instantiate(&mut store, module)
        .expect("instantiates");
    let outcome = match entry {
        Entry::Command => instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .and_then(|f| f.call(&mut store, ()))
            .map(|()| 0),
        Entry::Reactor => {
            let init = instance.get_typed_func::<(), ()>(&mut store, "_initialize");
            init.and_then(|f| f.call(&mut store, ())).and_then(|()| {
                instance
                    .get_typed_func::<(), i32>(&mut store, "run")?
                    .call(&mut store, ())
            })
        }
    };
    let exit = match outcome {
        Ok(code) => Ok(code),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ok(*code),
            None => Err(format!("{e:#}")),
        },
    };
    Ran {
        stdout: String::from_utf8_lossy(&stdout.contents()).into_owned(),
        exit,
    }
}

#[test]
fn icepll_output_is_unchanged_by_an_audit_everything_policy() {
    let Some(wasm) = corpus_module("icepll.wasm") else {
        return;
    };
    let engine = engine();
    let args = ["icepll", "-i", "12", "-o", "48"];
    let before = run(
        &engine,
        &compile(&engine, &wasm),
        &args,
        &[],
        &[],
        Entry::Command,
    );
    let after = run(
        &engine,
        &compile(&engine, &audited(&wasm)),
        &args,
        &[],
        &[],
        Entry::Command,
    );
    assert_eq!(before.exit, Ok(0), "the original icepll runs: {before:?}");
    assert!(
        before.stdout.contains("48"),
        "icepll reports the 48 MHz target: {}",
        before.stdout
    );
    assert_eq!(before, after);
}

#[test]
fn resvg_rendering_is_unchanged_by_an_audit_everything_policy() {
    let Some(wasm) = corpus_module("resvg.wasm") else {
        return;
    };
    let engine = engine();
    let svg = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/resvg/input/drawing.svg"),
    )
    .expect("the example drawing exists");
    let mut pngs = Vec::new();
    let mut runs = Vec::new();
    for bytes in [wasm.clone(), audited(&wasm)] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.svg"), &svg).unwrap();
        let module = compile(&engine, &bytes);
        let args = ["resvg", "/work/in.svg", "/work/out.png"];
        runs.push(run(
            &engine,
            &module,
            &args,
            &[],
            &[(dir.path(), "/work")],
            Entry::Command,
        ));
        pngs.push(std::fs::read(dir.path().join("out.png")).unwrap_or_default());
    }
    assert_eq!(
        runs[0].exit,
        Ok(0),
        "the original resvg renders: {:?}",
        runs[0]
    );
    assert!(
        pngs[0].starts_with(b"\x89PNG"),
        "the original resvg writes a PNG"
    );
    assert_eq!(runs[0], runs[1]);
    assert!(pngs[0] == pngs[1], "the woven resvg writes a different PNG");
}

#[test]
fn cpython_script_output_is_unchanged_by_an_audit_everything_policy() {
    let Some(wasm) = corpus_module("cpython.wasm") else {
        return;
    };
    let Some(_) = corpus_module("python-stdlib.zip") else {
        return;
    };
    let engine = engine();
    let lib = tempfile::tempdir().unwrap();
    std::fs::copy(
        corpus_dir().join("wasm/python-stdlib.zip"),
        lib.path().join("python315.zip"),
    )
    .unwrap();
    let script =
        "import json, sys\nprint(json.dumps({'sum': sum(range(10)), 'v': sys.version_info[:2]}))";
    let args = ["/usr/local/bin/python.wasm", "-c", script];
    let env = [("TMPDIR", "/tmp"), ("PYTHONTZPATH", ""), ("HOME", "/tmp")];
    let mut runs = Vec::new();
    for bytes in [wasm.clone(), audited(&wasm)] {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/local/lib")).unwrap();
        std::fs::create_dir_all(root.path().join("tmp")).unwrap();
        let module = compile(&engine, &bytes);
        let preopens = [(lib.path(), "/usr/local/lib"), (root.path(), "/")];
        runs.push(run(
            &engine,
            &module,
            &args,
            &env,
            &preopens,
            Entry::Reactor,
        ));
    }
    assert_eq!(
        runs[0].exit,
        Ok(0),
        "the original cpython runs the script: {:?}",
        runs[0]
    );
    assert!(
        runs[0].stdout.contains("\"sum\": 45"),
        "stdout: {}",
        runs[0].stdout
    );
    assert_eq!(runs[0], runs[1]);
}
