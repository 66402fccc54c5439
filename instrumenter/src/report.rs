//! The weave report: what was monitored, what was elided and why.
use policy_lang::ir::Program;
use serde::Serialize;

use crate::emit::Emitted;
use crate::module::ModuleInfo;
use crate::plan::Plan;

/// How many references to wrapped imports were redirected to wrappers, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Redirects {
    pub call: u32,
    pub return_call: u32,
    /// `ref.func` in function bodies.
    pub ref_func: u32,
    /// Function indices and `ref.func` expressions in element segments.
    pub element_items: u32,
    pub global_inits: u32,
    pub exports: u32,
    pub start: u32,
}

impl Redirects {
    pub fn total(&self) -> u32 {
        self.call
            + self.return_call
            + self.ref_func
            + self.element_items
            + self.global_inits
            + self.exports
            + self.start
    }

    pub(crate) fn add(&mut self, o: &Redirects) {
        self.call += o.call;
        self.return_call += o.return_call;
        self.ref_func += o.ref_func;
        self.element_items += o.element_items;
        self.global_inits += o.global_inits;
        self.exports += o.exports;
        self.start += o.start;
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WeaveReport {
    pub policies: Vec<PolicyReport>,
    pub wrapped: Vec<WrappedReport>,
    /// All redirected references.
    pub redirected: Redirects,
    /// Function bodies re-encoded (they referenced a wrapped import, or host hooks shifted
    /// every index); all other bodies are copied byte for byte.
    pub bodies_rewritten: u32,
    pub bodies_copied: u32,
    /// Custom sections dropped, with the reason (stale DWARF).
    pub dropped_sections: Vec<String>,
    pub host_hooks: bool,
    /// `module.field#function-index` of every import added for the monitor itself (the
    /// descriptor scan's `fd_fdstat_get`, `fd_prestat_get`, `fd_prestat_dir_name`, and
    /// `fd_write` for audit lines) because the module did not import it.
    pub added_imports: Vec<String>,
    /// `module.field#function-index` of every import wrapped only to keep the descriptor
    /// table right (`path_open`, `sock_accept`, `fd_close`, `fd_renumber` that no policy
    /// names).
    pub tracking_imports: Vec<String>,
    /// Size of the input and the output in bytes.
    pub input_size: usize,
    pub output_size: usize,
    /// Set when the input was a component: how the monitor was interposed (the fields
    /// above then describe the monitor's core module).
    pub component: Option<ComponentReport>,
}

/// How a component's monitor was put between its lowered imports and its core code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ComponentReport {
    /// Monitored lowerings (`canon lower` of an import a policy names).
    pub lowerings: u32,
    /// References to them that now name the monitor's wrapper.
    pub to_wrappers: u32,
    /// References before the monitor exists, which now name a trampoline to the wrapper.
    pub to_trampolines: u32,
    /// Top-level core modules, all kept byte for byte.
    pub modules_kept: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyReport {
    pub name: String,
    pub effective: bool,
    /// Why the policy is (or is not) compiled into this module.
    pub why: String,
    /// `module.field#function-index` of every import declaration it wraps.
    pub wrapped_imports: Vec<String>,
    pub redirected: Redirects,
    pub elided_events: Vec<ElidedEvent>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ElidedEvent {
    pub event: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WrappedReport {
    pub import: String,
    pub import_index: u32,
    pub wrapper_index: u32,
    pub redirected: Redirects,
}

impl WeaveReport {
    /// The report of weaving `program` into `input` (which `info` describes) as `plan`
    /// says, `emitted` being the result: the plan's per-policy reports with the
    /// references redirected for each policy's events added.
    pub(crate) fn assemble(
        program: &Program,
        info: &ModuleInfo,
        plan: &mut Plan,
        emitted: &Emitted,
        input_size: usize,
        host_hooks: bool,
    ) -> WeaveReport {
        let mut policies = std::mem::take(&mut plan.policy_reports);
        let mut total = Redirects::default();
        let mut wrapped = Vec::new();
        let mut tracking_imports = Vec::new();
        for (w, counts) in plan.wrappers.iter().zip(&emitted.counts) {
            total.add(counts);
            let named = program
                .policies
                .iter()
                .enumerate()
                .any(|(pi, p)| plan.effective[pi] && p.mentions(w.event));
            if !named {
                let imp = &info.func_imports[w.import as usize];
                tracking_imports.push(format!("{}.{}#{}", imp.module, imp.field, w.import));
            }
            for (pi, p) in program.policies.iter().enumerate() {
                if plan.effective[pi] && p.mentions(w.event) {
                    policies[pi].redirected.add(counts);
                }
            }
            let imp = &info.func_imports[w.import as usize];
            wrapped.push(WrappedReport {
                import: format!("{}.{}", imp.module, imp.field),
                import_index: w.import,
                wrapper_index: w.index,
                redirected: *counts,
            });
        }
        WeaveReport {
            policies,
            wrapped,
            redirected: total,
            bodies_rewritten: emitted.bodies_rewritten,
            bodies_copied: emitted.bodies_copied,
            dropped_sections: emitted.dropped.clone(),
            host_hooks,
            added_imports: plan
                .added_imports
                .iter()
                .map(|a| format!("{}.{}#{}", a.module, a.field, a.func_index))
                .collect(),
            tracking_imports,
            input_size,
            output_size: emitted.wasm.len(),
            component: None,
        }
    }

    /// The human-readable per-policy summary `irm weave` prints.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for p in &self.policies {
            if p.effective {
                out.push_str(&format!("policy {}: enforced ({})\n", p.name, p.why));
                for w in &p.wrapped_imports {
                    out.push_str(&format!("  wraps {w}\n"));
                }
                let r = &p.redirected;
                // A component's references are counted once, for the whole monitor.
                if self.component.is_none() {
                    out.push_str(&format!(
                        "  redirected {} references: {} call, {} return_call, {} ref.func, {} \
                         element items, {} global inits, {} exports, {} start\n",
                        r.total(),
                        r.call,
                        r.return_call,
                        r.ref_func,
                        r.element_items,
                        r.global_inits,
                        r.exports,
                        r.start
                    ));
                }
            } else {
                out.push_str(&format!("policy {}: elided ({})\n", p.name, p.why));
            }
            for e in &p.elided_events {
                out.push_str(&format!("  elided event {}: {}\n", e.event, e.reason));
            }
        }
        // A component's monitor follows its streams and descriptors; a core module's, its
        // descriptors.
        let followed = if self.component.is_some() {
            "streams and descriptors"
        } else {
            "descriptors"
        };
        for t in &self.tracking_imports {
            out.push_str(&format!("tracks {followed} through {t}\n"));
        }
        for a in &self.added_imports {
            out.push_str(&format!(
                "added import {a}: the monitor asks the host about descriptors or writes audit lines itself\n"
            ));
        }
        match &self.component {
            Some(c) if c.lowerings == 0 => out
                .push_str("component: no import a policy acts on is lowered; written unchanged\n"),
            Some(c) => out.push_str(&format!(
                "component: one monitor instance between {} lowered imports and the core code; \
                 {} references redirected ({} to wrappers, {} through trampolines); {} core \
                 modules kept byte for byte\n",
                c.lowerings,
                c.to_wrappers + c.to_trampolines,
                c.to_wrappers,
                c.to_trampolines,
                c.modules_kept
            )),
            None => out.push_str(&format!(
                "{} function bodies rewritten, {} copied unchanged\n",
                self.bodies_rewritten, self.bodies_copied
            )),
        }
        for d in &self.dropped_sections {
            out.push_str(&format!("dropped {d}\n"));
        }
        out
    }
}
