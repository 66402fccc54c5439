//! Section 3: real programs, unhardened vs woven vs host-enforced.
//!
//! * cpython runs a file-heavy script (writes, reads back, lists and deletes 200 files under
//!   `/tmp`) under `no-exfil` + `bench/policies/cpython-tmp.pol`;
//! * resvg renders a generated SVG to a PNG under `examples/resvg/resvg-fs.pol`.
//!
//! Each runs three ways through `monitor-rt`'s [`Runner`]: unhardened, woven beforehand in the
//! default mode (what `irm weave` ships; the runner then needs no policy), and with the same
//! policies enforced in host functions (`irm run --enforce host`). Reported: wall time of a
//! whole run (modules are compiled before timing, so a run is instantiation, WASI set-up and
//! the program), the growth of the code section and of the whole module, and the wasmtime
//! compile time of the original and the woven module (fresh engine, no cache).

use crate::stats::{fmt_ratio, fmt_secs, median, spread};
use crate::Ctx;
use anyhow::{anyhow, bail, Context, Result};
use monitor_rt::{Enforcement, Prepared, Runner};
use policy_lang::ir::Program;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wasmtime::{Engine, Module};

#[derive(Debug, Clone)]
pub struct ProgramResult {
    pub name: String,
    pub what: String,
    pub policies: Vec<String>,
    pub original_size: u64,
    pub woven_size: Option<u64>,
    /// Bytes of code (the code section's contents) before and after weaving.
    pub code_sizes: Option<(u64, u64)>,
    /// Sections whose size changed, as `name: before -> after` (custom sections by name).
    pub section_changes: Vec<String>,
    pub compile_original: Option<f64>,
    pub compile_woven: Option<f64>,
    /// Compiles of each module behind the compile medians.
    pub compile_runs: usize,
    /// Run-to-run spread of the unhardened runs, (max - min) / median.
    pub wall_spread: Option<f64>,
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

    /// Relative growth of the whole module, e.g. 0.0004 for +0.04%.
    pub fn size_growth(&self) -> Option<f64> {
        Some(self.woven_size? as f64 / self.original_size as f64 - 1.0)
    }

    /// Relative growth of the code section: what the wrappers add to the program's code.
    pub fn code_growth(&self) -> Option<f64> {
        let (before, after) = self.code_sizes?;
        Some(after as f64 / before as f64 - 1.0)
    }
}

/// The size of every section of a module, in order: standard sections by their name, custom
/// sections as `custom "name"`. Repeated names are summed.
pub fn section_sizes(wasm: &[u8]) -> Result<Vec<(String, u64)>> {
    use wasmparser::{Parser, Payload};
    let mut out: Vec<(String, u64)> = Vec::new();
    let mut add = |name: String, len: usize| match out.iter_mut().find(|(n, _)| *n == name) {
        Some((_, l)) => *l += len as u64,
        None => out.push((name, len as u64)),
    };
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| anyhow!("parsing sections: {e}"))?;
        if let Payload::CustomSection(c) = &payload {
            add(format!("custom \"{}\"", c.name()), c.range().len());
        } else if let Some((id, range)) = payload.as_section() {
            // The code section comes as `CodeSectionStart`, whose range is the whole section.
            add(section_name(id).to_string(), range.len());
        }
    }
    Ok(out)
}

/// The name of a standard section by id.
fn section_name(id: u8) -> &'static str {
    match id {
        1 => "type",
        2 => "import",
        3 => "function",
        4 => "table",
        5 => "memory",
        6 => "global",
        7 => "export",
        8 => "start",
        9 => "element",
        10 => "code",
        11 => "data",
        12 => "data count",
        13 => "tag",
        _ => "unknown section",
    }
}

/// Code section sizes (before, after) and the sections whose size changed.
type SectionComparison = (Option<(u64, u64)>, Vec<String>);

/// Sections whose size differs between `before` and `after`, plus the code section sizes.
fn compare_sections(before: &[u8], after: &[u8]) -> Result<SectionComparison> {
    let a = section_sizes(before)?;
    let b = section_sizes(after)?;
    let get = |v: &[(String, u64)], n: &str| v.iter().find(|(m, _)| m == n).map(|(_, l)| *l);
    let code = get(&a, "code").zip(get(&b, "code"));
    let mut changes = Vec::new();
    for (name, len) in &a {
        match get(&b, name) {
            Some(l) if l == *len => {}
            Some(l) => changes.push(format!("{name}: {len} → {l} B")),
            None => changes.push(format!("{name}: {len} B → dropped")),
        }
    }
    for (name, len) in &b {
        if get(&a, name).is_none() {
            changes.push(format!("{name}: new, {len} B"));
        }
    }
    Ok((code, changes))
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
with open("/tmp/irm-bench-result.txt", "w") as f:
    f.write("%d %d\n" % (len(names), total))
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
            code_sizes: None,
            section_changes: vec![],
            compile_original: None,
            compile_woven: None,
            compile_runs: 0,
            wall_spread: None,
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
        let program = match crate::irm::compile_policies(&files) {
            Ok(p) => Some(p),
            Err(e) => {
                r.notes.push(format!("{e:#}"));
                None
            }
        };
        let woven = match &program {
            Some(p) => crate::irm::weave(&original, p),
            None => Err(anyhow!("no policy to weave")),
        };
        let woven = match woven {
            Ok(w) => {
                r.woven_size = Some(w.len() as u64);
                match compare_sections(&original, &w) {
                    Ok((code, changes)) => {
                        r.code_sizes = code;
                        r.section_changes = changes;
                    }
                    Err(e) => r.notes.push(format!("section sizes: {e:#}")),
                }
                Some(w)
            }
            Err(e) => {
                r.notes.push(format!("weave failed: {e:#}"));
                None
            }
        };
        // Compile times, interleaved so background load hits both alike; a fresh engine each
        // time (no cache). cpython takes about a minute per compile, so it gets two rounds.
        let rounds = if ctx.quick {
            1
        } else if original.len() > 20_000_000 {
            2
        } else {
            ctx.runs.min(3)
        };
        let (mut co, mut cw) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            match compile_secs(&original) {
                Ok(s) => co.push(s),
                Err(e) => {
                    r.notes
                        .push(format!("compile of the original failed: {e:#}"));
                    break;
                }
            }
            if let Some(w) = &woven {
                match compile_secs(w) {
                    Ok(s) => cw.push(s),
                    Err(e) => {
                        r.notes
                            .push(format!("compile of the woven module failed: {e:#}"));
                        break;
                    }
                }
            }
        }
        r.compile_original = median(&co);
        r.compile_woven = median(&cw);
        r.compile_runs = co.len().min(cw.len());
        eprintln!(
            "  compile: original {}, woven {}",
            r.compile_original.map(fmt_secs).unwrap_or_default(),
            r.compile_woven.map(fmt_secs).unwrap_or_default()
        );
        match wall_times(
            ctx,
            spec.name,
            &original,
            woven.as_deref(),
            program.as_ref(),
        ) {
            Ok(w) => {
                r.wall_spread = w.spread;
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

/// A fresh engine with the configuration monitor-rt's runner uses (taken from a runner with
/// default settings, so the two cannot drift apart).
fn engine() -> Result<Engine> {
    let runner = Runner::builder()
        .cache_dir(None)
        .build()
        .map_err(|e| anyhow!("creating the engine: {e}"))?;
    Ok(runner.engine().clone())
}

/// Seconds to compile `wasm` with a fresh engine of the runner's configuration; the module
/// goes straight to wasmtime, not through the runner's compiled-module cache.
fn compile_secs(wasm: &[u8]) -> Result<f64> {
    let engine = engine()?;
    let start = Instant::now();
    let m = Module::new(&engine, wasm).map_err(|e| anyhow!("{e:#}"))?;
    let secs = start.elapsed().as_secs_f64();
    drop(m);
    Ok(secs)
}

/// How a program is started: WASI arguments (argv\[0\] first), environment, preopens and,
/// for a reactor, the export to call after `_initialize`.
struct Invocation {
    args: Vec<String>,
    env: Vec<(String, String)>,
    preopens: Vec<(PathBuf, String)>,
    invoke: Option<String>,
}

/// A monitor-rt runner for `inv`: no policy (unhardened, or a module woven beforehand), or
/// `program` enforced in host functions (`irm run --enforce host`).
fn runner(inv: &Invocation, host: Option<&Program>, cache: &Path) -> Result<Runner> {
    let mut b = Runner::builder()
        .args(inv.args.iter().cloned())
        .cache_dir(Some(cache.to_path_buf()));
    for (k, v) in &inv.env {
        b = b.env(k, v);
    }
    for (host_dir, guest) in &inv.preopens {
        b = b.dir(host_dir, guest);
    }
    if let Some(f) = &inv.invoke {
        b = b.invoke(f);
    }
    // cpython's host-tool door; -1 means "no host tools here".
    b = b.host_functions(|linker| {
        linker.func_wrap("host", "call", |_: i32, _: i32, _: i32, _: i32| -> i32 {
            -1
        })?;
        Ok(())
    });
    if let Some(p) = host {
        b = b.program(p.clone()).enforcement(Enforcement::Host);
    }
    b.build().map_err(|e| anyhow!("{e}"))
}

struct WallTimes {
    /// (max - min) / median of the unhardened runs: the run-to-run noise.
    spread: Option<f64>,
    unhardened: Option<f64>,
    inline: Option<f64>,
    host: Option<f64>,
    runs: usize,
    notes: Vec<String>,
}

/// A scratch folder for one program, with the inputs it needs, how to start it, and the
/// file (relative to the scratch folder) whose content proves the run did its work.
fn prepare(ctx: &Ctx, name: &str, work: &Path) -> Result<(Invocation, PathBuf)> {
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
                invoke: Some("run".into()),
            };
            Ok((inv, PathBuf::from("tmp/irm-bench-result.txt")))
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
                invoke: None,
            };
            Ok((inv, PathBuf::from("out/drawing.png")))
        }
        other => bail!("no invocation known for {other}"),
    }
}

/// Wall times of whole runs through monitor-rt's runner: unhardened, the module woven
/// beforehand (default mode, what `irm weave` ships) and host enforcement of `program`.
/// Modules are woven and compiled before timing (compiled artifacts are cached); a timed
/// run is instantiation, WASI set-up and the program itself.
fn wall_times(
    ctx: &Ctx,
    name: &str,
    original: &[u8],
    woven: Option<&[u8]>,
    program: Option<&Program>,
) -> Result<WallTimes> {
    let work = std::env::temp_dir().join(format!("irm-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let cache = ctx
        .corpus
        .parent()
        .unwrap_or(&ctx.corpus)
        .join("irm-bench-cache");
    let result = (|| {
        let (inv, proof) = prepare(ctx, name, &work)?;
        let mut notes = Vec::new();
        let plain = runner(&inv, None, &cache)?;
        let mut modes: Vec<(&str, &Runner, Prepared)> = Vec::new();
        let p = plain.prepare(original, name).map_err(|e| anyhow!("{e}"))?;
        modes.push(("unhardened", &plain, p));
        if let Some(w) = woven {
            let p = plain.prepare(w, name).map_err(|e| anyhow!("{e}"))?;
            modes.push(("woven", &plain, p));
        }
        let host = match program {
            Some(prog) => Some(runner(&inv, Some(prog), &cache)?),
            None => None,
        };
        if let Some(h) = &host {
            let p = h.prepare(original, name).map_err(|e| anyhow!("{e}"))?;
            modes.push(("host-enforced", h, p));
        }
        let runs = if ctx.quick { 1 } else { ctx.runs };
        let mut secs: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
        let mut outputs: Vec<Option<Vec<u8>>> = vec![None; modes.len()];
        // One untimed warm-up run of each, then the modes interleaved so drift hits all alike.
        for round in 0..=runs {
            for (i, (label, r, prepared)) in modes.iter().enumerate() {
                let _ = std::fs::remove_file(work.join(&proof));
                let start = Instant::now();
                let ran = r.run_prepared(prepared);
                let t = start.elapsed().as_secs_f64();
                if let Err(e) = ran {
                    bail!("{label} run failed: {e}");
                }
                let out = std::fs::read(work.join(&proof))
                    .with_context(|| format!("{label} run wrote no {}", proof.display()))?;
                outputs[i] = Some(out);
                if round > 0 {
                    secs[i].push(t);
                }
            }
        }
        for (i, (label, _, _)) in modes.iter().enumerate().skip(1) {
            if outputs[i] != outputs[0] {
                notes.push(format!(
                    "the {label} run's {} differs from the unhardened one",
                    proof.display()
                ));
            }
        }
        let get = |label: &str| {
            modes
                .iter()
                .position(|m| m.0 == label)
                .and_then(|i| median(&secs[i]))
        };
        Ok(WallTimes {
            spread: spread(&secs[0]),
            unhardened: get("unhardened"),
            inline: get("woven"),
            host: get("host-enforced"),
            runs,
            notes,
        })
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

pub fn markdown(results: &[ProgramResult]) -> String {
    let mut s = String::new();
    s.push_str("| program | policies | wall: unhardened | woven (inline) | host-enforced | inline / unhardened | host / unhardened | module size | code section growth | whole-module size change | compile: original | woven | compile ratio |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let t = |v: Option<f64>| v.map(fmt_secs).unwrap_or_else(|| "–".into());
    let r = |v: Option<f64>| v.map(fmt_ratio).unwrap_or_else(|| "–".into());
    for p in results {
        s.push_str(&format!(
            "| {} ({}) | {} | {} | {} | {} | {} | {} | {:.1} MB | {} | {} | {} | {} | {} |\n",
            p.name,
            p.what,
            p.policies.join(", "),
            t(p.wall_unhardened),
            t(p.wall_inline),
            t(p.wall_host),
            r(p.wall_ratio_inline()),
            r(p.wall_ratio_host()),
            p.original_size as f64 / 1e6,
            p.code_growth()
                .zip(p.code_sizes)
                .map(|(g, (a, b))| format!("{:+.3}% ({:+} B)", g * 100.0, b as i64 - a as i64))
                .unwrap_or_else(|| "–".into()),
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
    s.push_str("\nRuns behind the medians: ");
    let runs: Vec<String> = results
        .iter()
        .map(|p| {
            let spread = p
                .wall_spread
                .map(|x| {
                    format!(
                        " (unhardened runs spread over {:.1}% of their median)",
                        x * 100.0
                    )
                })
                .unwrap_or_default();
            format!(
                "{} {} runs of each{spread}, {} compiles of each",
                p.name, p.runs, p.compile_runs
            )
        })
        .collect();
    s.push_str(&runs.join("; "));
    s.push_str(".\n\nSections whose size changed in weaving:\n\n");
    for p in results {
        if !p.section_changes.is_empty() {
            s.push_str(&format!("- {}: {}\n", p.name, p.section_changes.join("; ")));
        }
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
