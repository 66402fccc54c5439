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

use crate::stats::{fmt_ratio, fmt_secs};
use crate::Ctx;
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
            policies: &["policies/no-exfil.pol", "policies/tmp-writes.pol"],
        },
        ProgramSpec {
            name: "resvg",
            module: "resvg.wasm",
            what: "render a generated 400-shape SVG to PNG",
            policies: &["policies/tmp-writes.pol"],
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
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
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
            policies: spec.policies.iter().map(|p| p.to_string()).collect(),
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
            r.notes.push(format!("{} not in the corpus cache; skipped", spec.module));
            out.push(r);
            continue;
        };
        eprintln!("programs: {}", spec.name);
        r.original_size = original.len() as u64;
        let files: Vec<PathBuf> = spec.policies.iter().map(|p| ctx.workspace.join(p)).collect();
        let woven = crate::irm::compile_policies(&files)
            .and_then(|p| crate::irm::weave(&original, &p));
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
            Err(e) => r.notes.push(format!("compile of the original failed: {e:#}")),
        }
        if let Some(w) = &woven {
            match compile_secs(w) {
                Ok(s) => r.compile_woven = Some(s),
                Err(e) => r.notes.push(format!("compile of the woven module failed: {e:#}")),
            }
        }
        eprintln!(
            "  compile: original {}, woven {}",
            r.compile_original.map(fmt_secs).unwrap_or_default(),
            r.compile_woven.map(fmt_secs).unwrap_or_default()
        );
        match wall_times(ctx, spec.name, &path, &files) {
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

/// Seconds to compile `wasm` with a fresh default engine (no cache involved).
fn compile_secs(wasm: &[u8]) -> Result<f64> {
    let engine = wasmtime::Engine::default();
    let start = Instant::now();
    let m = wasmtime::Module::new(&engine, wasm).map_err(|e| anyhow!("{e:#}"))?;
    let secs = start.elapsed().as_secs_f64();
    drop(m);
    Ok(secs)
}

struct WallTimes {
    unhardened: Option<f64>,
    inline: Option<f64>,
    host: Option<f64>,
    runs: usize,
    notes: Vec<String>,
}

fn wall_times(ctx: &Ctx, name: &str, module: &Path, policies: &[PathBuf]) -> Result<WallTimes> {
    let work = std::env::temp_dir().join(format!("irm-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let _ = (module, policies);
    let result = Err(anyhow!(
        "monitor-rt's Runner has not landed yet; wall times not measured"
    ));
    let _ = std::fs::remove_dir_all(&work);
    let _ = ctx;
    result
}

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
                .map(|g| format!("{:+.3}% ({:+} B)", g * 100.0, p.woven_size.unwrap_or(0) as i64 - p.original_size as i64))
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
        let shapes = svg.matches("<circle").count() + svg.matches("<rect x").count() + svg.matches("<path").count();
        assert_eq!(shapes, 30);
    }
}
