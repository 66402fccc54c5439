//! Section 2: the run-time cost of one monitored call.
//!
//! A generated module calls a cheap monitored import in a loop `n` times (`run(n)`). Each
//! scenario runs three ways on the same engine configuration:
//!
//! * **unhardened**: the original module, the import is a plain host function;
//! * **inline**: the module woven by `instrumenter::weave` (default mode, no host hooks);
//! * **host**: the original module, the policy enforced in the host function by the
//!   reference interpreter (`--enforce host`).
//!
//! The module is compiled once per mode; a sample is one call of `run(n)` in a fresh
//! instance (so monitor state starts from the initial state), and only that call is timed.
//! `n` is calibrated per mode so one sample takes about a quarter of a second.

use crate::stats::{fmt_ratio, median};
use crate::Ctx;
use anyhow::{anyhow, bail, Context, Result};
use monitor_rt::{Enforcement, Runner};
use policy_lang::ir::Program;
use std::time::Instant;
use wasmtime::{Engine, Instance, Linker, Module, Store};

/// The cheap monitored import a scenario's loop calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Import {
    /// `env.tick(x: i32) -> i32`, called with the loop counter.
    Tick,
    /// `env.open(path: string) -> i32`, called with a fixed path in memory.
    Open,
    /// WASI's `path_open` under a preopen of `/tmp` (descriptor 3) with the relative path
    /// [`RELATIVE_PATH`]: the guard tests the resolved path `/tmp/` + it. The host
    /// answers the monitor's descriptor scan (`fd_fdstat_get`, `fd_prestat_get`,
    /// `fd_prestat_dir_name`) as a host preopening `/tmp` does, and `path_open` returns
    /// `ERRNO_NOENT` (so no descriptor is added and every call costs the same).
    WasiOpen,
}

/// The path the `WasiOpen` loop passes, relative to its `/tmp` preopen.
pub const RELATIVE_PATH: &str = "work/data/file-0001.txt";

/// The path the `Open` loop passes; the glob scenario allows it.
pub const OPEN_PATH: &str = "/tmp/work/data/file-0001.txt";

pub struct Scenario {
    pub name: &'static str,
    pub what: &'static str,
    pub import: Import,
    /// The policy block; [`Scenario::source`] prepends the event declaration.
    pub policy: &'static str,
}

pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "stateless deny-list",
            what: "deny 5 listed argument values",
            import: Import::Tick,
            policy: "policy deny_list {\n  on tick when x == -1 || x == -2 || x == -3 || x == -5 || x == -8 -> deny \"value on the deny list\";\n}\n",
        },
        Scenario {
            name: "3-state automaton",
            what: "cycle a→b→c→a, deny in c on a negative argument",
            import: Import::Tick,
            policy: "policy three_state {\n  initial state a;\n  state b;\n  state c;\n  on tick in a -> b;\n  on tick in b -> c;\n  on tick in c when x < 0 -> deny \"negative tick in c\";\n  on tick in c -> a;\n}\n",
        },
        Scenario {
            name: "counter",
            what: "bounded counter incremented on every call, deny at the limit",
            import: Import::Tick,
            policy: "policy counter {\n  var calls: 0..2000000000 = 0;\n  on tick when calls == 2000000000 -> deny \"too many ticks\";\n  on tick do calls += 1;\n}\n",
        },
        Scenario {
            name: GLOB_SCENARIO,
            what: "deny opens outside `/tmp/**` (string read from memory, DFA match)",
            import: Import::Open,
            policy: "policy tmp_only {\n  on open when !(path glob \"/tmp/**\") -> deny \"opens outside /tmp\";\n}\n",
        },
        Scenario {
            name: RESOLVED_SCENARIO,
            what: "WASI `path_open` of a relative path under a `/tmp` preopen, resolved, then the `/tmp/**` DFA",
            import: Import::WasiOpen,
            policy: "policy tmp_only {\n  on path_open when !(path glob \"/tmp/**\") -> deny \"opens outside /tmp\";\n}\n",
        },
    ]
}

impl Scenario {
    /// The full policy source (event declaration + policy).
    pub fn source(&self) -> String {
        let decl = match self.import {
            Import::Tick => "event tick = env.tick(x: i32) -> i32;\n",
            Import::Open => "event open = env.open(path: string) -> i32;\n",
            // A catalogue function: nothing to declare.
            Import::WasiOpen => "",
        };
        format!("{decl}{}", self.policy)
    }
}

/// The benchmark module: `run(n)` calls the import `n` times and sums the results (so the
/// calls cannot be removed), `memory` holds [`OPEN_PATH`] at offset 1024.
pub fn module_wat(import: Import) -> String {
    let (decl, call) = match import {
        Import::Tick => (
            r#"(import "env" "tick" (func $f (param i32) (result i32)))"#.to_string(),
            "(call $f (local.get $i))".to_string(),
        ),
        Import::Open => (
            r#"(import "env" "open" (func $f (param i32 i32) (result i32)))"#.to_string(),
            format!("(call $f (i32.const 1024) (i32.const {}))", OPEN_PATH.len()),
        ),
        // The loop counts ERRNO_NOENT (44) results as one call each.
        Import::WasiOpen => (
            r#"(import "wasi_snapshot_preview1" "path_open" (func $f (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#.to_string(),
            format!(
                "(i32.div_u (call $f (i32.const 3) (i32.const 1) (i32.const 2048) (i32.const {}) (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 4096)) (i32.const 44))",
                RELATIVE_PATH.len()
            ),
        ),
    };
    format!(
        r#"(module
  {decl}
  (memory (export "memory") 1)
  (data (i32.const 1024) "{OPEN_PATH}")
  (data (i32.const 2048) "{RELATIVE_PATH}")
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) {call}))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $acc)))
"#
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Unhardened,
    Inline,
    /// monitor-rt's host-side enforcement (`irm run --enforce host`).
    Host,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Unhardened, Mode::Inline, Mode::Host];
    pub fn label(self) -> &'static str {
        match self {
            Mode::Unhardened => "unhardened",
            Mode::Inline => "inline monitor",
            Mode::Host => "host enforcement",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ModeResult {
    pub mode: Mode,
    pub ns_per_call: Option<f64>,
    pub calls: u64,
    pub runs: usize,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub what: &'static str,
    pub modes: Vec<ModeResult>,
}

impl ScenarioResult {
    pub fn ns(&self, mode: Mode) -> Option<f64> {
        self.modes
            .iter()
            .find(|m| m.mode == mode)
            .and_then(|m| m.ns_per_call)
    }
}

pub fn run(ctx: &Ctx) -> Result<Vec<ScenarioResult>> {
    let engine = Engine::default();
    let target_secs = if ctx.quick { 0.02 } else { 0.25 };
    let mut out = Vec::new();
    for sc in scenarios() {
        eprintln!("runtime: {}", sc.name);
        let original = wat::parse_str(module_wat(sc.import)).context("benchmark module")?;
        let program =
            crate::irm::compile_source(&format!("{}.pol", sc.name.replace(' ', "-")), &sc.source());
        let mut modes = Vec::new();
        for mode in Mode::ALL {
            let r = program
                .as_ref()
                .map_err(|e| anyhow!("{e:#}"))
                .and_then(|p| {
                    measure_mode(
                        &engine,
                        &original,
                        p,
                        sc.import,
                        mode,
                        ctx.runs,
                        target_secs,
                    )
                });
            let res = match r {
                Ok((ns, calls, runs)) => ModeResult {
                    mode,
                    ns_per_call: Some(ns),
                    calls,
                    runs,
                    note: None,
                },
                Err(e) => ModeResult {
                    mode,
                    ns_per_call: None,
                    calls: 0,
                    runs: 0,
                    note: Some(format!("{e:#}")),
                },
            };
            eprintln!(
                "  {}: {}",
                mode.label(),
                res.ns_per_call
                    .map(|n| format!("{n:.2} ns/call"))
                    .unwrap_or_else(|| res.note.clone().unwrap_or_default())
            );
            modes.push(res);
        }
        out.push(ScenarioResult {
            name: sc.name,
            what: sc.what,
            modes,
        });
    }
    Ok(out)
}

/// Returns (median ns per call, calls per sample, samples).
fn measure_mode(
    engine: &Engine,
    original: &[u8],
    program: &Program,
    import: Import,
    mode: Mode,
    runs: usize,
    target_secs: f64,
) -> Result<(f64, u64, usize)> {
    let wasm = match mode {
        Mode::Inline => crate::irm::weave(original, program)?,
        Mode::Host => return measure_host(original, program, import, runs, target_secs),
        Mode::Unhardened => original.to_vec(),
    };
    let module = Module::new(engine, &wasm)
        .map_err(anyhow::Error::from)
        .context("compiling the benchmark module")?;
    let sample = |n: u32| -> Result<f64> {
        let (mut store, instance) = instantiate(engine, &module, import)?;
        let run = instance
            .get_typed_func::<u32, i32>(&mut store, "run")
            .map_err(anyhow::Error::from)?;
        let start = Instant::now();
        let acc = run.call(&mut store, n).map_err(anyhow::Error::from)?;
        let secs = start.elapsed().as_secs_f64();
        if acc as u32 != n {
            bail!("run({n}) returned {acc}: the import was not called once per iteration");
        }
        Ok(secs)
    };
    calibrated(sample, runs, target_secs, 0.0)
}

/// Calibrates `n` so one sample takes about `target_secs` (after a warm-up probe), then
/// returns the median of `(sample(n) - overhead) / n` in ns, `n`, and the sample count.
fn calibrated(
    sample: impl Fn(u32) -> Result<f64>,
    runs: usize,
    target_secs: f64,
    overhead: f64,
) -> Result<(f64, u64, usize)> {
    let probe_n = 100_000u32;
    let probe = (sample(probe_n)? - overhead).max(1e-9);
    let per_call = (probe / probe_n as f64).max(1e-10);
    let n = ((target_secs / per_call) as u64).clamp(100_000, 1_000_000_000) as u32;
    let mut ns = Vec::new();
    for _ in 0..runs.max(1) {
        ns.push((sample(n)? - overhead) * 1e9 / n as f64);
    }
    let m = median(&ns).ok_or_else(|| anyhow!("no samples"))?;
    Ok((m, n as u64, ns.len()))
}

/// Host enforcement through monitor-rt's runner (`irm run --enforce host --invoke run`):
/// the module is unchanged and the runner decides every call of the import in a host
/// function around the real one. A sample is a whole run (new instance, WASI context and
/// host wrappers), so the fixed cost of a run with `n = 0` (median of several) is
/// subtracted before dividing by `n`.
fn measure_host(
    original: &[u8],
    program: &Program,
    import: Import,
    runs: usize,
    target_secs: f64,
) -> Result<(f64, u64, usize)> {
    let sample = |n: u32| -> Result<f64> {
        let runner = Runner::builder()
            .program(program.clone())
            .enforcement(Enforcement::Host)
            .cache_dir(None)
            .invoke("run")
            .args(["bench".to_string(), n.to_string()])
            .host_functions(move |linker| {
                define_import(linker, import)?;
                Ok(())
            })
            .build()
            .map_err(|e| anyhow!("{e}"))?;
        let prepared = runner
            .prepare(original, "bench")
            .map_err(|e| anyhow!("{e}"))?;
        let start = Instant::now();
        let done = runner.run_prepared(&prepared).map_err(|e| anyhow!("{e}"))?;
        let secs = start.elapsed().as_secs_f64();
        if done.results.first().map(String::as_str) != Some(n.to_string().as_str()) {
            bail!(
                "run({n}) returned {:?}: the import was not called once per iteration",
                done.results
            );
        }
        Ok(secs)
    };
    let mut fixed = Vec::new();
    for _ in 0..5 {
        fixed.push(sample(0)?);
    }
    let overhead = median(&fixed).unwrap_or(0.0);
    calibrated(sample, runs, target_secs, overhead)
}

/// One call of `run(n)` in a fresh instance (used by the profiler).
pub fn run_once(engine: &Engine, module: &Module, import: Import, n: u32) -> Result<i32> {
    let (mut store, instance) = instantiate(engine, module, import)?;
    let run = instance
        .get_typed_func::<u32, i32>(&mut store, "run")
        .map_err(anyhow::Error::from)?;
    run.call(&mut store, n).map_err(anyhow::Error::from)
}

/// Defines `import` in `linker` as a plain host function returning 1 (so `run` counts calls).
fn define_import<T: 'static>(linker: &mut Linker<T>, import: Import) -> wasmtime::Result<()> {
    match import {
        Import::Tick => linker.func_wrap("env", "tick", |_: i32| -> i32 { 1 }),
        Import::Open => linker.func_wrap("env", "open", |_: i32, _: i32| -> i32 { 1 }),
        Import::WasiOpen => define_wasi_open(linker),
    }?;
    Ok(())
}

const ERRNO_BADF: i32 = 8;
const ERRNO_NOENT: i32 = 44;

/// `path_open` answering `ERRNO_NOENT`, and the descriptor scan of a host with the three
/// standard streams and `/tmp` preopened as descriptor 3.
fn define_wasi_open<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<&mut Linker<T>> {
    const WASI: &str = "wasi_snapshot_preview1";
    fn write<T>(caller: &mut wasmtime::Caller<'_, T>, at: i32, bytes: &[u8]) -> bool {
        match caller.get_export("memory") {
            Some(wasmtime::Extern::Memory(m)) => m.write(caller, at as u32 as usize, bytes).is_ok(),
            _ => false,
        }
    }
    linker.func_wrap(
        WASI,
        "path_open",
        |_: i32, _: i32, _: i32, _: i32, _: i32, _: i64, _: i64, _: i32, _: i32| -> i32 {
            ERRNO_NOENT
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_get",
        |mut caller: wasmtime::Caller<'_, T>, fd: i32, buf: i32| -> i32 {
            let filetype: u8 = match fd {
                0..=2 => 2,
                3 => 3,
                _ => return ERRNO_BADF,
            };
            let mut stat = [0u8; 24];
            stat[0] = filetype;
            stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
            if write(&mut caller, buf, &stat) {
                0
            } else {
                21
            }
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_prestat_get",
        |mut caller: wasmtime::Caller<'_, T>, fd: i32, buf: i32| -> i32 {
            if fd != 3 {
                return ERRNO_BADF;
            }
            let mut pre = [0u8; 8];
            pre[4..8].copy_from_slice(&4u32.to_le_bytes());
            if write(&mut caller, buf, &pre) {
                0
            } else {
                21
            }
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_prestat_dir_name",
        |mut caller: wasmtime::Caller<'_, T>, fd: i32, buf: i32, len: i32| -> i32 {
            if fd != 3 || len < 4 {
                return ERRNO_BADF;
            }
            if write(&mut caller, buf, b"/tmp") {
                0
            } else {
                21
            }
        },
    )
}

/// A fresh instance of the benchmark module with the import defined by [`define_import`].
fn instantiate(engine: &Engine, module: &Module, import: Import) -> Result<(Store<()>, Instance)> {
    let mut store = Store::new(engine, ());
    let mut linker: Linker<()> = Linker::new(engine);
    define_import(&mut linker, import).map_err(anyhow::Error::from)?;
    let instance = linker
        .instantiate(&mut store, module)
        .map_err(anyhow::Error::from)
        .context("instantiating the benchmark module")?;
    Ok((store, instance))
}

/// The brief's target: a finite-state check adds less than this many ns per monitored call
/// (inline).
pub const FSM_TARGET_NS: f64 = 1.0;

/// The finite-state scenario (index, name, ns added per call) whose inline monitor adds the
/// most per call over the unhardened loop, among those measured both ways.
pub fn worst_fsm_added(results: &[ScenarioResult]) -> Option<(usize, &'static str, f64)> {
    results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.name != GLOB_SCENARIO && r.name != RESOLVED_SCENARIO)
        .filter_map(|(i, r)| Some((i, r.name, r.ns(Mode::Inline)? - r.ns(Mode::Unhardened)?)))
        .max_by(|a, b| a.2.total_cmp(&b.2))
}

/// The finite-state scenario (index, name) whose inline monitor adds the most per call,
/// when that misses the brief's target ([`FSM_TARGET_NS`]).
pub fn worst_fsm_miss(results: &[ScenarioResult]) -> Option<(usize, &'static str)> {
    worst_fsm_added(results)
        .filter(|(_, _, added)| *added >= FSM_TARGET_NS)
        .map(|(i, name, _)| (i, name))
}

/// The scenarios that are not finite-state checks (they match strings).
pub const GLOB_SCENARIO: &str = "path glob guard";
pub const RESOLVED_SCENARIO: &str = "resolved path guard";

/// The brief's target for a guard on a resolved path: under this many ns per call.
pub const RESOLVED_TARGET_NS: f64 = 100.0;

pub fn markdown(results: &[ScenarioResult]) -> String {
    let mut s = String::new();
    s.push_str("| policy | what it checks | unhardened | inline monitor | host enforcement | inline adds | host adds | inline / unhardened | host added / inline added |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        let u = r.ns(Mode::Unhardened);
        let i = r.ns(Mode::Inline);
        let h = r.ns(Mode::Host);
        let cell = |v: Option<f64>| {
            v.map(|v| format!("{v:.2} ns"))
                .unwrap_or_else(|| "–".into())
        };
        let add = |v: Option<f64>| match (v, u) {
            (Some(v), Some(u)) => format!("{:+.2} ns", v - u),
            _ => "–".into(),
        };
        let ratio_iu = match (i, u) {
            (Some(i), Some(u)) => fmt_ratio(i / u),
            _ => "–".into(),
        };
        let ratio_hi = match (h, i, u) {
            (Some(h), Some(i), Some(u)) if i - u > 0.05 => fmt_ratio((h - u) / (i - u)),
            (Some(_), Some(_), Some(_)) => "inline adds < 0.05 ns".into(),
            _ => "–".into(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.what,
            cell(u),
            cell(i),
            cell(h),
            add(i),
            add(h),
            ratio_iu,
            ratio_hi
        ));
    }
    s.push_str("\nSamples (median taken over them; calls per sample calibrated per mode to about a quarter second):\n\n");
    for r in results {
        let per: Vec<String> = r
            .modes
            .iter()
            .filter(|m| m.runs > 0)
            .map(|m| format!("{} {} × {} calls", m.mode.label(), m.runs, m.calls))
            .collect();
        s.push_str(&format!("- {}: {}\n", r.name, per.join("; ")));
    }
    let notes: Vec<String> = results
        .iter()
        .flat_map(|r| {
            r.modes.iter().filter_map(move |m| {
                m.note
                    .as_ref()
                    .map(|n| format!("- {} / {}: {}", r.name, m.mode.label(), n))
            })
        })
        .collect();
    if !notes.is_empty() {
        s.push_str("\nNot measured:\n\n");
        s.push_str(&notes.join("\n"));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmark_modules_are_valid_wasm() {
        for import in [Import::Tick, Import::Open] {
            let wasm = wat::parse_str(module_wat(import)).unwrap();
            crate::tools::validator().validate_all(&wasm).unwrap();
        }
    }

    #[test]
    fn unhardened_loop_calls_the_import_once_per_iteration() {
        let engine = Engine::default();
        let wasm = wat::parse_str(module_wat(Import::Tick)).unwrap();
        let module = Module::new(&engine, &wasm).unwrap();
        let (mut store, instance) = instantiate(&engine, &module, Import::Tick).unwrap();
        let run = instance
            .get_typed_func::<u32, i32>(&mut store, "run")
            .unwrap();
        // tick returns 1 per call, so the sum counts the calls.
        assert_eq!(run.call(&mut store, 1000).unwrap(), 1000);
    }

    #[test]
    fn every_scenario_policy_compiles_and_monitors_its_import() {
        for sc in scenarios() {
            let p = crate::irm::compile_source("scenario.pol", &sc.source())
                .unwrap_or_else(|e| panic!("{}: {e:#}", sc.name));
            let (module, field) = match sc.import {
                Import::Tick => ("env", "tick"),
                Import::Open => ("env", "open"),
                Import::WasiOpen => ("wasi_snapshot_preview1", "path_open"),
            };
            assert!(p.event_for_import(module, field).is_some(), "{}", sc.name);
        }
    }

    #[test]
    fn woven_loop_still_calls_the_import_once_per_iteration() {
        let engine = Engine::default();
        for sc in scenarios() {
            let p = crate::irm::compile_source("scenario.pol", &sc.source()).unwrap();
            let woven =
                crate::irm::weave(&wat::parse_str(module_wat(sc.import)).unwrap(), &p).unwrap();
            let module = Module::new(&engine, &woven).unwrap();
            let (mut store, instance) = instantiate(&engine, &module, sc.import).unwrap();
            let run = instance
                .get_typed_func::<u32, i32>(&mut store, "run")
                .unwrap();
            assert_eq!(run.call(&mut store, 1000).unwrap(), 1000, "{}", sc.name);
        }
    }

    #[test]
    fn the_resolved_path_scenario_denies_a_path_that_resolves_outside_tmp() {
        // Under the /tmp preopen, `../etc/x` is /etc/x: the woven guard must deny it.
        let sc = scenarios()
            .into_iter()
            .find(|s| s.name == RESOLVED_SCENARIO)
            .unwrap();
        let p = crate::irm::compile_source("resolved.pol", &sc.source()).unwrap();
        let wat = module_wat(sc.import).replace(RELATIVE_PATH, "../etc/x/data/file-0001");
        let woven = crate::irm::weave(&wat::parse_str(wat).unwrap(), &p).unwrap();
        let engine = Engine::default();
        let module = Module::new(&engine, &woven).unwrap();
        let (mut store, instance) = instantiate(&engine, &module, sc.import).unwrap();
        let run = instance
            .get_typed_func::<u32, i32>(&mut store, "run")
            .unwrap();
        assert!(run.call(&mut store, 1).is_err(), "the open is denied");
    }

    #[test]
    fn host_enforced_run_counts_every_call() {
        let sc = &scenarios()[1];
        let p = crate::irm::compile_source("three.pol", &sc.source()).unwrap();
        let original = wat::parse_str(module_wat(sc.import)).unwrap();
        // One sample of 100,000 calls through the runner's host enforcement; measure_host
        // fails unless run(n) returned n.
        let (ns, calls, samples) = measure_host(&original, &p, sc.import, 1, 0.0).unwrap();
        assert!(ns.is_finite());
        assert_eq!((calls, samples), (100_000, 1));
    }

    #[test]
    fn host_enforcement_denies_what_the_policy_denies() {
        // The deny-list scenario denies x == -1.
        let sc = &scenarios()[0];
        let p = crate::irm::compile_source("deny.pol", &sc.source()).unwrap();
        let wasm = wat::parse_str(
            r#"(module (import "env" "tick" (func $f (param i32) (result i32)))
                 (memory (export "memory") 1)
                 (func (export "run") (param i32) (result i32) (call $f (i32.const -1))))"#,
        )
        .unwrap();
        let err = measure_host(&wasm, &p, Import::Tick, 1, 0.0).unwrap_err();
        assert!(
            format!("{err:#}").contains("value on the deny list"),
            "{err:#}"
        );
    }
}
