//! Assembling BENCHMARKS.md: machine, a targets summary that says plainly what is missed,
//! then one section per benchmark.

use crate::compile::CompileResult;
use crate::machine::Machine;
use crate::process::ProcessResult;
use crate::programs::ProgramResult;
use crate::runtime::{Mode, ScenarioResult};
use crate::stats::{fmt_ratio, fmt_secs};
use crate::weave::{policy_sets, ModuleResult, ALL_CORES, VALIDATE, WASM_OPT};

pub struct Report {
    pub machine: Machine,
    pub quick: bool,
    pub weave: Option<Vec<ModuleResult>>,
    pub runtime: Option<Vec<ScenarioResult>>,
    pub programs: Option<Vec<ProgramResult>>,
    pub compile: Option<Vec<CompileResult>>,
    pub process: Option<ProcessResult>,
    pub components: Option<crate::components::ComponentsResult>,
    /// Why the inline monitor misses the per-call target, when it does.
    pub runtime_profile: Option<String>,
    /// Why policy compilation misses its target, when it does.
    pub compile_profile: Option<String>,
}

/// One line of the targets table.
pub struct Target {
    pub target: &'static str,
    pub measured: String,
    /// `None` when nothing was measured for it.
    pub met: Option<bool>,
}

/// `ratio(secs of label, secs of baseline)` with where it was measured (`label on module`),
/// for every module measured with `baseline` and each of `labels`, in module then label order.
fn ratios(
    weave: &[ModuleResult],
    baseline: &str,
    labels: &[&str],
    ratio: impl Fn(f64, f64) -> f64,
) -> Vec<(f64, String)> {
    let mut out = Vec::new();
    for m in weave {
        let Some(base) = m.secs(baseline) else {
            continue;
        };
        for l in labels {
            if let Some(w) = m.secs(l) {
                out.push((ratio(w, base), format!("{} on {}", l, m.name)));
            }
        }
    }
    out
}

impl Report {
    pub fn new(machine: Machine, quick: bool) -> Report {
        Report {
            machine,
            quick,
            weave: None,
            runtime: None,
            programs: None,
            compile: None,
            process: None,
            components: None,
            runtime_profile: None,
            compile_profile: None,
        }
    }

    pub fn targets(&self) -> Vec<Target> {
        let mut t = Vec::new();
        let weave = self.weave.as_deref().unwrap_or(&[]);
        let weave_labels: Vec<&str> = policy_sets().iter().map(|(l, _)| *l).collect();

        // Weaving the 100 MB module in under 2 s.
        let cpython = weave
            .iter()
            .find(|m| m.name == "cpython.wasm" && !m.tools.is_empty());
        let worst_cpython = cpython.and_then(|m| {
            weave_labels
                .iter()
                .filter_map(|l| m.secs(l))
                .max_by(f64::total_cmp)
        });
        t.push(Target {
            target: "weave a 100 MB module (cpython) in < 2 s on one core",
            measured: worst_cpython
                .map(|s| format!("{} (slowest policy set)", fmt_secs(s)))
                .unwrap_or_else(|| "not measured".into()),
            met: worst_cpython.map(|s| s < 2.0),
        });

        // At most 1.5x validation, on every module.
        let worst = ratios(weave, VALIDATE, &weave_labels, |w, floor| w / floor)
            .into_iter()
            .reduce(|a, b| if b.0 > a.0 { b } else { a });
        t.push(Target {
            target: "weave time ≤ 1.5x wasmparser validation of the same module",
            measured: worst
                .as_ref()
                .map(|(r, w)| format!("worst {} ({w})", fmt_ratio(*r)))
                .unwrap_or_else(|| "not measured".into()),
            met: worst.as_ref().map(|(r, _)| *r <= 1.5),
        });

        // 30x faster than a binaryen round trip, where binaryen can read the module. Both
        // tools as a user runs them (wasm-opt uses its thread pool, irm one validating
        // thread per core); the one-thread ratio is shown too.
        let least_ratio = |labels: &[&str]| {
            ratios(weave, WASM_OPT, labels, |w, opt| opt / w)
                .into_iter()
                .reduce(|a, b| if b.0 < a.0 { b } else { a })
        };
        let least = least_ratio(&[ALL_CORES]);
        let least_one = least_ratio(&weave_labels);
        t.push(Target {
            target: "weave ≥ 30x faster than `wasm-opt` with no passes",
            measured: match (&least, &least_one) {
                (Some((r, w)), Some((r1, _))) => format!(
                    "least {} ({w}); {} on one thread",
                    fmt_ratio(*r),
                    fmt_ratio(*r1)
                ),
                (Some((r, w)), None) => format!("least {} ({w})", fmt_ratio(*r)),
                _ => "not measured (wasm-opt could not read any module)".into(),
            },
            met: least.as_ref().map(|(r, _)| *r >= 30.0),
        });

        // Runtime: a finite-state check adds < 1 ns and is cheaper than host enforcement.
        let runtime = self.runtime.as_deref().unwrap_or(&[]);
        let worst_added = crate::runtime::worst_fsm_added(runtime);
        t.push(Target {
            target: "a finite-state check adds < 1 ns per monitored call (inline)",
            measured: worst_added
                .map(|(_, name, ns)| format!("worst {ns:+.2} ns ({name})"))
                .unwrap_or_else(|| "not measured".into()),
            met: worst_added.map(|(_, _, ns)| ns < crate::runtime::FSM_TARGET_NS),
        });
        let resolved = runtime
            .iter()
            .find(|r| r.name == crate::runtime::RESOLVED_SCENARIO)
            .and_then(|r| Some(r.ns(Mode::Inline)? - r.ns(Mode::Unhardened)?));
        t.push(Target {
            target: "a guard on a resolved path adds < 100 ns per monitored call (inline)",
            measured: resolved
                .map(|ns| format!("{ns:+.2} ns"))
                .unwrap_or_else(|| "not measured".into()),
            met: resolved.map(|ns| ns < crate::runtime::RESOLVED_TARGET_NS),
        });
        let cheaper: Vec<(bool, &str)> = runtime
            .iter()
            .filter_map(|r| Some((r.ns(Mode::Inline)? < r.ns(Mode::Host)?, r.name)))
            .collect();
        t.push(Target {
            target: "inline monitor cheaper than the same policy enforced in the host",
            measured: if cheaper.is_empty() {
                "not measured".into()
            } else {
                let slower: Vec<&str> = cheaper.iter().filter(|c| !c.0).map(|c| c.1).collect();
                if slower.is_empty() {
                    format!("cheaper in all {} scenarios", cheaper.len())
                } else {
                    format!("not cheaper in: {}", slower.join(", "))
                }
            },
            met: (!cheaper.is_empty()).then(|| cheaper.iter().all(|c| c.0)),
        });

        // Real programs.
        let programs = self.programs.as_deref().unwrap_or(&[]);
        let worst_wall = programs
            .iter()
            .filter_map(|p| Some((p.wall_ratio_inline()?, p.name.as_str())))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let noise = programs
            .iter()
            .filter_map(|p| p.wall_spread)
            .max_by(f64::total_cmp)
            .map(|x| {
                format!(
                    "; unhardened runs themselves spread over up to {:.1}%",
                    x * 100.0
                )
            })
            .unwrap_or_default();
        t.push(Target {
            target: "real programs run within noise (< 1%) of the original (woven)",
            measured: worst_wall
                .map(|(r, n)| format!("worst {:+.1}% ({n}){noise}", (r - 1.0) * 100.0))
                .unwrap_or_else(|| "not measured".into()),
            met: worst_wall.map(|(r, _)| r < 1.01),
        });
        let worst_size = programs
            .iter()
            .filter_map(|p| Some((p.code_growth()?, p.name.as_str())))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        t.push(Target {
            target: "code size grows by the wrappers only (< 0.1% on real programs)",
            measured: worst_size
                .map(|(g, n)| format!("worst {:+.3}% of the code section ({n}); whole-module changes in section 3", g * 100.0))
                .unwrap_or_else(|| "not measured".into()),
            met: worst_size.map(|(g, _)| g < 0.001),
        });

        // Policy compilation.
        let c1000 = crate::compile::secs_1000(self.compile.as_deref().unwrap_or(&[]));
        t.push(Target {
            target: "compile a 1,000-transition policy in < 10 ms",
            measured: c1000.map(fmt_secs).unwrap_or_else(|| "not measured".into()),
            met: c1000.map(|s| s < crate::compile::TARGET_SECS),
        });

        // The whole weave process against the whole validation process.
        let process = self.process.as_ref();
        t.push(Target {
            target: "whole `irm weave` process (output written to disk) ≤ 1.3x `wasm-tools validate` of cpython",
            measured: match process.and_then(|p| Some((p, p.ratio()?))) {
                Some((p, r)) => format!(
                    "{} ({} vs {} on {})",
                    fmt_ratio(r),
                    fmt_secs(p.weave.unwrap_or_default()),
                    fmt_secs(p.validate.unwrap_or_default()),
                    p.module
                ),
                None => process
                    .and_then(|p| p.note.clone())
                    .unwrap_or_else(|| "not measured".into()),
            },
            met: process
                .and_then(|p| p.ratio())
                .map(|r| r <= crate::process::TARGET_RATIO),
        });
        t
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("# irm benchmarks\n\n");
        s.push_str(
            "Generated by `cargo run --release -p irm-bench -- --out BENCHMARKS.md`; do not edit by \
             hand. The harness is `bench/` (each section's method is in its module docs). Every \
             ratio compares numbers measured in the same run on the machine below; times are \
             medians.\n\n",
        );
        if self.quick {
            s.push_str(
                "> **Smoke run (`--quick`)**: one run each, small modules and short loops. These \
                 numbers check that the harness works; they are not measurements.\n\n",
            );
        }
        s.push_str("## Machine and versions\n\n");
        s.push_str(&self.machine.markdown());
        s.push_str("\n## Targets from the brief\n\n");
        s.push_str("| target | measured | status |\n|---|---|---|\n");
        for t in self.targets() {
            let status = match t.met {
                Some(true) => "met",
                Some(false) => "**MISSED**",
                None => "not measured",
            };
            s.push_str(&format!("| {} | {} | {} |\n", t.target, t.measured, status));
        }
        s.push('\n');
        if let Some(w) = &self.weave {
            s.push_str("## 1. Weave throughput on real modules\n\n");
            s.push_str(
                "Each tool runs in its own process; peak memory is that process's maximum resident \
                 set. In-process tools time only their work on the module already in memory \
                 (`irm weave` rows exclude compiling the policy); `wasm-opt` is timed as a whole \
                 process. The `irm weave` rows use the default mode (no host hooks), which copies \
                 bodies that never reference a monitored import byte for byte. Rows marked \
                 `1 thread` validate function bodies on one thread (the brief's targets are per \
                 core, and the validation floor is one thread); `all cores` is irm's default, one \
                 validating thread per core (the output is the same).\n\n",
            );
            s.push_str(&crate::weave::markdown(w));
        }
        if let Some(r) = &self.runtime {
            s.push_str("## 2. Runtime cost per monitored call\n\n");
            s.push_str(
                "A generated module calls a cheap host import in a loop; ns per call is the loop's \
                 time divided by its iterations (the loop and the host call included, so the \
                 *added* columns are the monitor's cost). Inline = `irm weave` default mode; \
                 host = `irm run --enforce host` through monitor-rt's `Runner` (the module \
                 unchanged, the policy decided in a host function around the real one by the \
                 reference interpreter); a host sample is a whole run, so the fixed cost of a \
                 run with zero calls is subtracted.\n\n",
            );
            s.push_str(&crate::runtime::markdown(r));
            s.push('\n');
            if let Some(p) = &self.runtime_profile {
                s.push_str(p);
                s.push('\n');
            }
        }
        if let Some(p) = &self.programs {
            s.push_str("## 3. Real programs\n\n");
            s.push_str(
                "Whole runs through monitor-rt's `Runner`: the original module; the module woven \
                 beforehand in the default mode (what `irm weave` ships); the original with the \
                 same policies enforced in host functions (`irm run --enforce host`). Modules are \
                 compiled before timing (a run is instantiation, WASI set-up and the program); \
                 the modes are interleaved after one warm-up run each, and each run's output file \
                 is checked. Compile times use a fresh engine without cache. The code section \
                 growth is what the wrappers add; the whole-module change also counts custom \
                 sections (DWARF that weaving would make stale is dropped).\n\n",
            );
            s.push_str(&crate::programs::markdown(p));
            s.push('\n');
        }
        if let Some(c) = &self.compile {
            s.push_str("## 4. Policy compilation\n\n");
            s.push_str(
                "Generated policies mixing integer guards, glob guards (one DFA each), post-call \
                 counter updates and denies; `policy_lang::compile` on the source text (parse, \
                 check, lower), median of repeated runs after one warm-up.\n\n",
            );
            s.push_str(&crate::compile::markdown(c));
            s.push('\n');
            if let Some(p) = &self.compile_profile {
                s.push_str(p);
                s.push('\n');
            }
        }
        if let Some(p) = &self.process {
            s.push_str("## 5. The whole weave process against wasm-tools\n\n");
            s.push_str(
                "What a user waits for: `irm weave` (release build, the policy compiled, the \
                 module read, woven and written to a file on disk, not synced) against \
                 `wasm-tools validate` of the same module, both as whole processes from spawn \
                 to exit, run alternately; medians of wall time.\n\n",
            );
            s.push_str(&crate::process::markdown(p));
            s.push('\n');
        }
        if let Some(c) = &self.components {
            s.push_str("## 6. Components (WASI 0.2)\n\n");
            s.push_str(&crate::components::markdown(c));
            s.push('\n');
        }
        s
    }
}
