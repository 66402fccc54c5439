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
use policy_lang::ir::Program;
use std::time::Instant;
use wasmtime::{Caller, Engine, Instance, Linker, Module, Store};

/// The cheap monitored import a scenario's loop calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Import {
    /// `env.tick(x: i32) -> i32`, called with the loop counter.
    Tick,
    /// `env.open(path: string) -> i32`, called with a fixed path in memory.
    Open,
}

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
            name: "path glob guard",
            what: "deny opens outside `/tmp/**` (string read from memory, DFA match)",
            import: Import::Open,
            policy: "policy tmp_only {\n  on open when !(path glob \"/tmp/**\") -> deny \"opens outside /tmp\";\n}\n",
        },
    ]
}

impl Scenario {
    /// The full policy source (event declaration + policy).
    pub fn source(&self) -> String {
        let decl = match self.import {
            Import::Tick => "event tick = env.tick(x: i32) -> i32;\n",
            Import::Open => "event open = env.open(path: string) -> i32;\n",
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
    };
    format!(
        r#"(module
  {decl}
  (memory (export "memory") 1)
  (data (i32.const 1024) "{OPEN_PATH}")
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
    /// The harness's own model of host enforcement: the reference interpreter stepped
    /// inside the host function (a lower bound on what any host-side check costs).
    HostModel,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Unhardened, Mode::Inline, Mode::Host, Mode::HostModel];
    pub fn label(self) -> &'static str {
        match self {
            Mode::Unhardened => "unhardened",
            Mode::Inline => "inline monitor",
            Mode::Host => "host enforcement (--enforce host)",
            Mode::HostModel => "interpreter in the host function (harness model)",
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
        Mode::Host => bail!("{}", crate::programs::HOST_NOT_AVAILABLE_SHORT),
        Mode::Unhardened | Mode::HostModel => original.to_vec(),
    };
    let module = Module::new(engine, &wasm)
        .map_err(anyhow::Error::from)
        .context("compiling the benchmark module")?;
    let enforce = match mode {
        Mode::HostModel => Some(program),
        _ => None,
    };
    let sample = |n: u32| -> Result<f64> {
        let (mut store, instance) = instantiate(engine, &module, import, enforce)?;
        let run = instance
            .get_typed_func::<u32, i32>(&mut store, "run")
            .map_err(anyhow::Error::from)?;
        let start = Instant::now();
        let acc = run.call(&mut store, n).map_err(anyhow::Error::from)?;
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(acc);
        Ok(secs)
    };
    // Calibrate: a short run (also warms caches), then size n for the target sample time.
    let probe_n = 100_000u32;
    let probe = sample(probe_n)?;
    let per_call = (probe / probe_n as f64).max(1e-10);
    let n = ((target_secs / per_call) as u64).clamp(100_000, 1_000_000_000) as u32;
    let mut ns = Vec::new();
    for _ in 0..runs.max(1) {
        ns.push(sample(n)? * 1e9 / n as f64);
    }
    let m = median(&ns).ok_or_else(|| anyhow!("no samples"))?;
    Ok((m, n as u64, ns.len()))
}

/// Host state: the host-side monitor when the policy is enforced in the host function.
struct HostState {
    monitor: Option<policy_lang::interp::Monitor>,
}

fn instantiate(
    engine: &Engine,
    module: &Module,
    import: Import,
    enforce: Option<&Program>,
) -> Result<(Store<HostState>, Instance)> {
    let mut store = Store::new(
        engine,
        HostState {
            monitor: enforce.map(policy_lang::interp::Monitor::new),
        },
    );
    let mut linker = Linker::new(engine);
    define_imports(&mut linker, import, enforce)?;
    let instance = linker
        .instantiate(&mut store, module)
        .map_err(anyhow::Error::from)
        .context("instantiating the benchmark module")?;
    Ok((store, instance))
}

/// The host side of the benchmark's import: returns 1 (so `run` counts calls). With
/// `enforce`, every call first steps the reference interpreter (pre), then the real
/// function runs, then the post step: what host-side enforcement has to do per call.
fn define_imports(
    linker: &mut Linker<HostState>,
    import: Import,
    enforce: Option<&Program>,
) -> Result<()> {
    use policy_lang::interp::Value;
    let event = match (import, enforce) {
        (Import::Tick, Some(p)) => Some(
            p.event_for_import("env", "tick")
                .ok_or_else(|| anyhow!("the policy does not monitor env.tick"))?,
        ),
        (Import::Open, Some(p)) => Some(
            p.event_for_import("env", "open")
                .ok_or_else(|| anyhow!("the policy does not monitor env.open"))?,
        ),
        (_, None) => None,
    };
    match import {
        Import::Tick => {
            linker
                .func_wrap(
                    "env",
                    "tick",
                    move |mut caller: Caller<'_, HostState>, x: i32| -> wasmtime::Result<i32> {
                        let (Some(event), Some(m)) = (event, caller.data_mut().monitor.as_mut())
                        else {
                            return Ok(1);
                        };
                        let args = [Value::Int(i64::from(x))];
                        host_step(m, event, &args, || 1)
                    },
                )
                .map_err(anyhow::Error::from)?;
        }
        Import::Open => {
            linker
                .func_wrap(
                    "env",
                    "open",
                    move |mut caller: Caller<'_, HostState>,
                          ptr: i32,
                          len: i32|
                          -> wasmtime::Result<i32> {
                        let Some(event) = event else {
                            return Ok(1);
                        };
                        let path = read_string(&mut caller, ptr, len);
                        let args = [Value::Str(path)];
                        let m = caller
                            .data_mut()
                            .monitor
                            .as_mut()
                            .ok_or_else(|| wasmtime::format_err!("no host monitor"))?;
                        host_step(m, event, &args, || 1)
                    },
                )
                .map_err(anyhow::Error::from)?;
        }
    }
    Ok(())
}

/// Pre step, the call itself, post step: a deny becomes a trap.
fn host_step(
    m: &mut policy_lang::interp::Monitor,
    event: u32,
    args: &[policy_lang::interp::Value],
    call: impl FnOnce() -> i32,
) -> wasmtime::Result<i32> {
    use policy_lang::interp::Outcome;
    match m.pre(event, args).outcome {
        Outcome::Deny(r) => wasmtime::bail!("policy violation: {}", r.reason),
        Outcome::Suppress(v) => return Ok(v.unwrap_or(0) as i32),
        Outcome::Proceed => {}
    }
    let result = call();
    if let Outcome::Deny(r) = m.post(event, args, Some(i64::from(result))).outcome {
        wasmtime::bail!("policy violation: {}", r.reason);
    }
    Ok(result)
}

/// The bytes of a (ptr, len) string in the caller's exported memory; `None` when out of
/// bounds, as the interpreter expects.
fn read_string(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = caller.get_export("memory")?.into_memory()?;
    let data = mem.data(&*caller);
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize)?;
    data.get(start..end).map(<[u8]>::to_vec)
}

pub fn markdown(results: &[ScenarioResult]) -> String {
    let mut s = String::new();
    s.push_str("| policy | what it checks | unhardened | inline monitor | host enforcement (`--enforce host`) | interpreter in host fn (harness model) | inline adds | host adds | model adds | inline / unhardened | host added / inline added | model added / inline added |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        let u = r.ns(Mode::Unhardened);
        let i = r.ns(Mode::Inline);
        let h = r.ns(Mode::Host);
        let hm = r.ns(Mode::HostModel);
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
        let added_ratio = |v: Option<f64>| match (v, i, u) {
            (Some(v), Some(i), Some(u)) if i - u > 0.05 => fmt_ratio((v - u) / (i - u)),
            (Some(_), Some(_), Some(_)) => "inline adds < 0.05 ns".into(),
            _ => "–".into(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.what,
            cell(u),
            cell(i),
            cell(h),
            cell(hm),
            add(i),
            add(h),
            add(hm),
            ratio_iu,
            added_ratio(h),
            added_ratio(hm)
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
        let (mut store, instance) = instantiate(&engine, &module, Import::Tick, None).unwrap();
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
            let field = match sc.import {
                Import::Tick => "tick",
                Import::Open => "open",
            };
            assert!(p.event_for_import("env", field).is_some(), "{}", sc.name);
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
            let (mut store, instance) = instantiate(&engine, &module, sc.import, None).unwrap();
            let run = instance
                .get_typed_func::<u32, i32>(&mut store, "run")
                .unwrap();
            assert_eq!(run.call(&mut store, 1000).unwrap(), 1000, "{}", sc.name);
        }
    }

    #[test]
    fn harness_host_model_denies_what_the_policy_denies() {
        // The deny-list scenario denies x == -1; the loop passes 0, 1, 2, ... so a module
        // calling tick(-1) must trap under the host model.
        let sc = &scenarios()[0];
        let p = crate::irm::compile_source("deny.pol", &sc.source()).unwrap();
        let engine = Engine::default();
        let wasm = wat::parse_str(
            r#"(module (import "env" "tick" (func $f (param i32) (result i32)))
                 (memory (export "memory") 1)
                 (func (export "run") (param i32) (result i32) (call $f (i32.const -1))))"#,
        )
        .unwrap();
        let module = Module::new(&engine, &wasm).unwrap();
        let (mut store, instance) = instantiate(&engine, &module, Import::Tick, Some(&p)).unwrap();
        let run = instance
            .get_typed_func::<u32, i32>(&mut store, "run")
            .unwrap();
        let err = run.call(&mut store, 0).unwrap_err();
        assert!(
            format!("{err:#}").contains("value on the deny list"),
            "{err:#}"
        );
    }
}
