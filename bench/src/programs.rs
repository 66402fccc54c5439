//! Section 3: real programs, unhardened vs woven vs host-enforced.
//!
//! * cpython runs a file-heavy script (writes, reads back, lists and deletes files under
//!   `/tmp`) under `no-exfil` + `tmp-writes`;
//! * resvg renders a generated SVG from `/tmp` to a PNG in `/tmp` under `tmp-writes`.
//!
//! Reported: wall time of a whole run through `monitor-rt`'s runner (compiled modules come
//! from its disk cache, so only instantiation and the run are timed), module size growth, and
//! the wasmtime compile time of the original and the woven module (measured once each, with
//! a fresh engine, since cpython takes about a minute to compile).

use crate::stats::{fmt_ratio, fmt_secs, median};
use crate::Ctx;
use anyhow::{anyhow, bail, Context, Result};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;
use wasmtime::{Config, Engine, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

#[derive(Debug, Clone)]
pub struct ProgramResult {
    pub name: String,
    pub what: String,
    pub policies: Vec<String>,
    pub original_size: u64,
    pub woven_size: Option<u64>,
    pub compile_original: Option<f64>,
    pub compile_woven: Option<f64>,
    pub wall_unhardened: Option<f64>,
    pub wall_inline: Option<f64>,
    pub wall_host: Option<f64>,
    pub runs: usize,
    pub notes: Vec<String>,
}

impl ProgramResult {
    pub fn wall_ratio_inline(&self) -> Option<f64> {
        Some(self.wall_inline? / self.wall_unhardened?)
    }

    pub fn wall_ratio_host(&self) -> Option<f64> {
        Some(self.wall_host? / self.wall_unhardened?)
    }

    /// Relative growth of the module, e.g. 0.0004 for +0.04%.
    pub fn size_growth(&self) -> Option<f64> {
        Some(self.woven_size? as f64 / self.original_size as f64 - 1.0)
    }
}

/// How to run one real program.
pub struct ProgramSpec {
    pub name: &'static str,
    pub module: &'static str,
    pub what: &'static str,
    pub policies: &'static [&'static str],
}

pub fn specs() -> Vec<ProgramSpec> {
    vec![
        ProgramSpec {
            name: "cpython",
            module: "cpython.wasm",
            what: "script writing, reading, listing and deleting 200 files in /tmp",
            policies: &[crate::irm::NO_EXFIL, "bench/policies/cpython-tmp.pol"],
        },
        ProgramSpec {
            name: "resvg",
            module: "resvg.wasm",
            what: "render a generated 400-shape SVG to PNG",
            policies: &["examples/resvg/resvg-fs.pol"],
        },
    ]
}

/// The file-heavy script cpython runs.
pub const PYTHON_SCRIPT: &str = r#"import os
base = "/tmp/irm-bench"
os.makedirs(base, exist_ok=True)
total = 0
for i in range(200):
    p = os.path.join(base, f"f{i:03}.txt")
    with open(p, "w") as f:
        f.write(("line %d\n" % i) * 50)
for i in range(200):
    with open(os.path.join(base, f"f{i:03}.txt")) as f:
        total += len(f.read())
names = sorted(os.listdir(base))
for n in names:
    os.remove(os.path.join(base, n))
os.rmdir(base)
print(len(names), total)
"#;

/// A deterministic SVG with enough shapes, gradients and paths to make rendering dominate.
pub fn generate_svg(shapes: usize) -> String {
    let mut s = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"600\" viewBox=\"0 0 800 600\">\n\
         <defs><linearGradient id=\"g\" x1=\"0\" y1=\"0\" x2=\"1\" y2=\"1\">\
         <stop offset=\"0\" stop-color=\"#1d4ed8\"/><stop offset=\"1\" stop-color=\"#f59e0b\"/>\
         </linearGradient></defs>\n<rect width=\"800\" height=\"600\" fill=\"url(#g)\"/>\n",
    );
    // A fixed linear congruential sequence keeps the picture identical run to run.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |m: u64| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % m
    };
    for i in 0..shapes {
        let (cx, cy, r) = (next(800), next(600), 5 + next(60));
        let hue = next(360);
        match i % 3 {
            0 => s.push_str(&format!(
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"{r}\" fill=\"hsl({hue},70%,50%)\" fill-opacity=\"0.6\"/>\n"
            )),
            1 => s.push_str(&format!(
                "<rect x=\"{cx}\" y=\"{cy}\" width=\"{r}\" height=\"{}\" rx=\"4\" fill=\"hsl({hue},60%,40%)\" stroke=\"#000\" stroke-width=\"1.5\" transform=\"rotate({} {cx} {cy})\"/>\n",
                r / 2 + 3,
                next(90)
            )),
            _ => s.push_str(&format!(
                "<path d=\"M{cx} {cy} q {} {} {} {} t {} {}\" fill=\"none\" stroke=\"hsl({hue},80%,30%)\" stroke-width=\"3\"/>\n",
                next(80),
                next(80),
                next(120),
                next(40),
                next(100),
                next(60)
            )),
        }
    }
    s.push_str("</svg>\n");
    s
}

pub fn run(ctx: &Ctx) -> Result<Vec<ProgramResult>> {
    let mut out = Vec::new();
    let engine = engine()?;
    for spec in specs() {
        if ctx.quick && spec.name == "cpython" {
            // A cold compile of cpython takes about a minute; not for a smoke run.
            continue;
        }
        let path = ctx.corpus.join(spec.module);
        let mut r = ProgramResult {
            name: spec.name.to_string(),
            what: spec.what.to_string(),
            policies: spec
                .policies
                .iter()
                .map(|p| crate::irm::policy_file(&ctx.workspace, p).1)
                .collect(),
            original_size: 0,
            woven_size: None,
            compile_original: None,
            compile_woven: None,
            wall_unhardened: None,
            wall_inline: None,
            wall_host: None,
            runs: 0,
            notes: vec![],
        };
        let Ok(original) = std::fs::read(&path) else {
            r.notes
                .push(format!("{} not in the corpus cache; skipped", spec.module));
            out.push(r);
            continue;
        };
        if spec.name == "cpython" && !ctx.corpus.join("python-stdlib.zip").exists() {
            r.notes
                .push("python-stdlib.zip not in the corpus cache; skipped".into());
            out.push(r);
            continue;
        }
        eprintln!("programs: {}", spec.name);
        r.original_size = original.len() as u64;
        let files: Vec<PathBuf> = spec
            .policies
            .iter()
            .map(|p| crate::irm::policy_file(&ctx.workspace, p).0)
            .collect();
        let woven =
            crate::irm::compile_policies(&files).and_then(|p| crate::irm::weave(&original, &p));
        let woven = match woven {
            Ok(w) => {
                r.woven_size = Some(w.len() as u64);
                Some(w)
            }
            Err(e) => {
                r.notes.push(format!("weave failed: {e:#}"));
                None
            }
        };
        match compile_secs(&original) {
            Ok(s) => r.compile_original = Some(s),
            Err(e) => r
                .notes
                .push(format!("compile of the original failed: {e:#}")),
        }
        if let Some(w) = &woven {
            match compile_secs(w) {
                Ok(s) => r.compile_woven = Some(s),
                Err(e) => r
                    .notes
                    .push(format!("compile of the woven module failed: {e:#}")),
            }
        }
        eprintln!(
            "  compile: original {}, woven {}",
            r.compile_original.map(fmt_secs).unwrap_or_default(),
            r.compile_woven.map(fmt_secs).unwrap_or_default()
        );
        match wall_times(ctx, &engine, spec.name, &original, woven.as_deref()) {
            Ok(w) => {
                r.wall_unhardened = w.unhardened;
                r.wall_inline = w.inline;
                r.wall_host = w.host;
                r.runs = w.runs;
                r.notes.extend(w.notes);
            }
            Err(e) => r.notes.push(format!("runs failed: {e:#}")),
        }
        out.push(r);
    }
    Ok(out)
}

/// The engine real programs need: exceptions on, 8 MiB of wasm stack (cpython).
fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_exceptions(true);
    config.max_wasm_stack(8 << 20);
    // wasmtime-wasi enables wasmtime's async support, which requires the async stack to be
    // at least as large as the wasm stack (no async calls are made here).
    config.async_stack_size(9 << 20);
    Engine::new(&config).map_err(|e| anyhow!("creating the engine: {e:#}"))
}

/// Seconds to compile `wasm` with a fresh engine of the same configuration (no cache).
fn compile_secs(wasm: &[u8]) -> Result<f64> {
    let engine = engine()?;
    let start = Instant::now();
    let m = Module::new(&engine, wasm).map_err(|e| anyhow!("{e:#}"))?;
    let secs = start.elapsed().as_secs_f64();
    drop(m);
    Ok(secs)
}

/// Compiles `wasm`, reusing an artifact cached under `<corpus>/../cwasm/` (keyed by the
/// bytes and the engine's compatibility hash), so wall times exclude compilation.
fn compile_cached(ctx: &Ctx, engine: &Engine, wasm: &[u8]) -> Result<Module> {
    let mut h = DefaultHasher::new();
    wasm.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    let dir = ctx.corpus.parent().unwrap_or(&ctx.corpus).join("cwasm");
    let path = dir.join(format!("{:016x}.cwasm", h.finish()));
    if path.exists() {
        // SAFETY: the file was written by `Module::serialize` of an engine with the same
        // compatibility hash (it is part of the file name), by this harness or by
        // instrumenter's corpus tests, which use the same scheme.
        if let Ok(m) = unsafe { Module::deserialize_file(engine, &path) } {
            return Ok(m);
        }
    }
    let module = Module::new(engine, wasm).map_err(|e| anyhow!("compiling: {e:#}"))?;
    if std::fs::create_dir_all(&dir).is_ok() {
        if let Ok(bytes) = module.serialize() {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }
    Ok(module)
}

/// How a program is started: WASI arguments, environment, preopens and entry points.
struct Invocation {
    args: Vec<String>,
    env: Vec<(String, String)>,
    preopens: Vec<(PathBuf, String)>,
    /// A reactor (`_initialize`, then `run() -> i32`) rather than a command (`_start`).
    reactor: bool,
}

/// One run of an instantiated program: wall time of instantiation plus the run, its exit
/// code and its stdout.
struct Ran {
    secs: f64,
    exit: i32,
    stdout: String,
    stderr: String,
}

fn run_once(engine: &Engine, module: &Module, inv: &Invocation) -> Result<Ran> {
    let stdout = MemoryOutputPipe::new(16 << 20);
    let stderr = MemoryOutputPipe::new(16 << 20);
    let mut wasi = WasiCtxBuilder::new();
    wasi.args(&inv.args)
        .envs(&inv.env)
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    for (host, guest) in &inv.preopens {
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
            .map_err(|e| anyhow!("preopening {}: {e:#}", host.display()))?;
    }
    let start = Instant::now();
    let mut store: Store<WasiP1Ctx> = Store::new(engine, wasi.build_p1());
    let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |t| t).map_err(|e| anyhow!("{e:#}"))?;
    // cpython's host-tool door; -1 means "no host tools here".
    linker
        .func_wrap("host", "call", |_: i32, _: i32, _: i32, _: i32| -> i32 {
            -1
        })
        .map_err(|e| anyhow!("{e:#}"))?;
    let instance = linker
        .instantiate(&mut store, module)
        .map_err(|e| anyhow!("instantiating: {e:#}"))?;
    let outcome = if inv.reactor {
        instance
            .get_typed_func::<(), ()>(&mut store, "_initialize")
            .and_then(|f| f.call(&mut store, ()))
            .and_then(|()| {
                instance
                    .get_typed_func::<(), i32>(&mut store, "run")?
                    .call(&mut store, ())
            })
    } else {
        instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .and_then(|f| f.call(&mut store, ()))
            .map(|()| 0)
    };
    let secs = start.elapsed().as_secs_f64();
    let exit = match outcome {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => *code,
            None => bail!(
                "trapped: {e:#}; stderr: {}",
                String::from_utf8_lossy(&stderr.contents())
                    .chars()
                    .take(300)
                    .collect::<String>()
            ),
        },
    };
    Ok(Ran {
        secs,
        exit,
        stdout: String::from_utf8_lossy(&stdout.contents()).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.contents()).into_owned(),
    })
}

struct WallTimes {
    unhardened: Option<f64>,
    inline: Option<f64>,
    host: Option<f64>,
    runs: usize,
    notes: Vec<String>,
}

/// A scratch folder for one program, with the inputs it needs, and how to start it.
fn prepare(ctx: &Ctx, name: &str, work: &Path) -> Result<(Invocation, String)> {
    let mk =
        |p: &Path| std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()));
    match name {
        "cpython" => {
            let lib = work.join("lib");
            let tmp = work.join("tmp");
            let root = work.join("root");
            for d in [&lib, &tmp, &root] {
                mk(d)?;
            }
            let zip = ctx.corpus.join("python-stdlib.zip");
            std::fs::copy(&zip, lib.join("python315.zip"))
                .with_context(|| format!("copying {}", zip.display()))?;
            let inv = Invocation {
                args: vec![
                    "/usr/local/bin/python.wasm".into(),
                    "-c".into(),
                    PYTHON_SCRIPT.into(),
                ],
                env: vec![
                    ("TMPDIR".into(), "/tmp".into()),
                    ("PYTHONTZPATH".into(), String::new()),
                    ("HOME".into(), "/tmp".into()),
                ],
                // Descriptors 3, 4, 5 in this order: bench/policies/cpython-tmp.pol names 4.
                preopens: vec![
                    (lib, "/usr/local/lib".into()),
                    (tmp, "/tmp".into()),
                    (root, "/".into()),
                ],
                reactor: true,
            };
            Ok((inv, "200 ".into()))
        }
        "resvg" => {
            let input = work.join("in");
            let output = work.join("out");
            mk(&input)?;
            mk(&output)?;
            std::fs::write(input.join("drawing.svg"), generate_svg(400))
                .context("writing the SVG")?;
            let inv = Invocation {
                args: vec![
                    "resvg".into(),
                    "/in/drawing.svg".into(),
                    "/out/drawing.png".into(),
                ],
                env: vec![],
                // Input first (descriptor 3), output second (4), as resvg-fs.pol expects.
                preopens: vec![(input, "/in".into()), (output, "/out".into())],
                reactor: false,
            };
            Ok((inv, String::new()))
        }
        other => bail!("no invocation known for {other}"),
    }
}

fn wall_times(
    ctx: &Ctx,
    engine: &Engine,
    name: &str,
    original: &[u8],
    woven: Option<&[u8]>,
) -> Result<WallTimes> {
    let work = std::env::temp_dir().join(format!("irm-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let result = (|| {
        let (inv, expect) = prepare(ctx, name, &work)?;
        let mut notes = Vec::new();
        let mut modules: Vec<(&str, Module)> =
            vec![("unhardened", compile_cached(ctx, engine, original)?)];
        if let Some(w) = woven {
            modules.push(("woven", compile_cached(ctx, engine, w)?));
        }
        let runs = if ctx.quick { 1 } else { ctx.runs };
        let mut secs: Vec<Vec<f64>> = vec![Vec::new(); modules.len()];
        let mut outputs: Vec<Option<String>> = vec![None; modules.len()];
        // One untimed warm-up run of each, then the modes interleaved so drift hits both.
        for round in 0..=runs {
            for (i, (label, module)) in modules.iter().enumerate() {
                let ran = run_once(engine, module, &inv).with_context(|| format!("{label} run"))?;
                if ran.exit != 0 || !ran.stdout.contains(&expect) {
                    bail!(
                        "{label} run failed: exit {}, stdout {:?}, stderr {:?}",
                        ran.exit,
                        ran.stdout.chars().take(200).collect::<String>(),
                        ran.stderr.chars().take(300).collect::<String>()
                    );
                }
                if name == "resvg" {
                    let png = std::fs::read(work.join("out/drawing.png")).unwrap_or_default();
                    if !png.starts_with(b"\x89PNG") {
                        bail!("{label} run wrote no PNG");
                    }
                    outputs[i] = Some(format!("{} PNG bytes", png.len()));
                } else {
                    outputs[i] = Some(ran.stdout.clone());
                }
                if round > 0 {
                    secs[i].push(ran.secs);
                }
            }
        }
        if outputs.len() == 2 && outputs[0] != outputs[1] {
            notes.push(format!(
                "woven output differs from the original: {:?} vs {:?}",
                outputs[0], outputs[1]
            ));
        }
        notes.push(HOST_NOT_AVAILABLE.to_string());
        Ok(WallTimes {
            unhardened: median(&secs[0]),
            inline: secs.get(1).and_then(|s| median(s)),
            host: None,
            runs,
            notes,
        })
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// What the host-enforced columns say while monitor-rt has no host-side enforcement.
pub const HOST_NOT_AVAILABLE_SHORT: &str =
    "not measured: host enforcement not available in this build";
pub const HOST_NOT_AVAILABLE: &str =
    "host-enforced: not measured: host enforcement not available in this build";

pub fn markdown(results: &[ProgramResult]) -> String {
    let mut s = String::new();
    s.push_str("| program | policies | wall: unhardened | woven (inline) | host-enforced | inline / unhardened | host / unhardened | module size | size growth | compile: original | woven | compile ratio |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let t = |v: Option<f64>| v.map(fmt_secs).unwrap_or_else(|| "–".into());
    let r = |v: Option<f64>| v.map(fmt_ratio).unwrap_or_else(|| "–".into());
    for p in results {
        s.push_str(&format!(
            "| {} ({}) | {} | {} | {} | {} | {} | {} | {:.1} MB | {} | {} | {} | {} |\n",
            p.name,
            p.what,
            p.policies.join(", "),
            t(p.wall_unhardened),
            t(p.wall_inline),
            t(p.wall_host),
            r(p.wall_ratio_inline()),
            r(p.wall_ratio_host()),
            p.original_size as f64 / 1e6,
            p.size_growth()
                .map(|g| format!(
                    "{:+.3}% ({:+} B)",
                    g * 100.0,
                    p.woven_size.unwrap_or(0) as i64 - p.original_size as i64
                ))
                .unwrap_or_else(|| "–".into()),
            t(p.compile_original),
            t(p.compile_woven),
            r(p.compile_woven.zip(p.compile_original).map(|(w, o)| w / o)),
        ));
    }
    let notes: Vec<String> = results
        .iter()
        .flat_map(|p| p.notes.iter().map(move |n| format!("- {}: {}", p.name, n)))
        .collect();
    if !notes.is_empty() {
        s.push_str("\nNotes:\n\n");
        s.push_str(&notes.join("\n"));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_svg_is_deterministic() {
        assert_eq!(generate_svg(30), generate_svg(30));
    }

    #[test]
    fn generated_svg_has_the_requested_number_of_shapes() {
        let svg = generate_svg(30);
        let shapes = svg.matches("<circle").count()
            + svg.matches("<rect x").count()
            + svg.matches("<path").count();
        assert_eq!(shapes, 30);
    }

    #[test]
    fn benchmark_policies_compile() {
        let ws = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        for spec in specs() {
            let files: Vec<PathBuf> = spec
                .policies
                .iter()
                .map(|p| crate::irm::policy_file(ws, p).0)
                .collect();
            crate::irm::compile_policies(&files).unwrap_or_else(|e| panic!("{}: {e:#}", spec.name));
        }
    }
}
