//! Weaves compiled irm policies ([`policy_lang::ir::Program`]) into a core WebAssembly
//! module, producing an inline reference monitor.
//!
//! # Guarantees of a woven module
//! * Every import declaration bound to an event of an effective policy gets a wrapper
//!   (a new function appended after all existing ones, with the import's exact type),
//!   and **every reference** to the import is redirected to it: `call`, `return_call`
//!   and `ref.func` in code, element segments of every form, table and global
//!   initialisers, exports and the start function. Tables and indirect calls then need
//!   no change: no funcref to the raw import can be created any more.
//! * The wrapper decides each call exactly as `policy_lang::ir` specifies, before the
//!   call (pre-event), keeping monitor state in new mutable globals that are not
//!   exported (the module cannot name them) and DFA tables in a private memory.
//! * A denied call traps (`unreachable`) after writing a one-line message through the
//!   module's own `fd_write` (when it has one) and storing the violation code in the
//!   exported global `irm:violation`. No imports are added in the default mode, so
//!   every untouched function body is copied byte for byte and indices do not move.
//! * The output is validated before it is returned; a module that cannot be monitored
//!   safely is an error, never an unmonitored output.
//!
//! With [`WeaveOptions::host_hooks`] the woven module additionally imports one hook per
//! wrapped event (see [`manifest::HookLayout`]); that shifts every defined function
//! index, so every body is re-encoded in that mode.
//!
//! Semantics decisions the interpreter must share: a suppressed call takes no post
//! step (the import never returned); a firing deny transition still evaluates its
//! updates, so a fault in them is reported instead of the deny.
mod codegen;
pub mod component;
mod emit;
mod error;
mod fngen;
pub mod manifest;
mod module;
mod plan;
pub mod report;
mod resources;
mod validate;

pub use error::WeaveError;
pub use report::WeaveReport;

use policy_lang::ir::Program;
use wasmparser::WasmFeatures;

/// The version recorded in `producers` and the manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone, Debug, Default)]
pub struct WeaveOptions {
    /// Import `irm` hook functions so the host sees every monitored call (for `irm run`
    /// and differential tests). Re-encodes every function body.
    pub host_hooks: bool,
    /// Threads that validate function bodies (most of a weave's time): 0 means one per
    /// available core. The output does not depend on it.
    pub threads: usize,
}

/// What the core weaver is asked to do: the caller's [`WeaveOptions`], and what weaving
/// a component's monitor adds to them.
#[derive(Clone, Debug, Default)]
pub(crate) struct CoreOptions {
    pub host_hooks: bool,
    /// Host hooks also receive every string argument's bytes (see
    /// [`manifest::HookLayout`]): a component's host cannot read the memory they are in.
    pub hook_strings: bool,
    pub threads: usize,
    /// Validate the woven module before returning it. Off only where the caller validates
    /// it anyway: the component weaver validates the monitor it inserts, sections and
    /// bodies, as part of the woven component.
    pub validate_output: bool,
}

impl From<&WeaveOptions> for CoreOptions {
    fn from(o: &WeaveOptions) -> CoreOptions {
        CoreOptions {
            host_hooks: o.host_hooks,
            hook_strings: false,
            threads: o.threads,
            validate_output: true,
        }
    }
}

/// A woven module and what was done to it.
#[derive(Clone, Debug)]
pub struct Woven {
    pub wasm: Vec<u8>,
    pub report: WeaveReport,
}

/// The proposals wasmtime 48 enables by default; inputs and outputs are validated
/// against exactly these.
pub fn features() -> WasmFeatures {
    WasmFeatures::WASM3
}

/// The generated helper functions the plan asks for, in `Plan::helper_types` order.
fn helpers(plan: &plan::Plan) -> Vec<(wasm_encoder::Function, &'static str)> {
    let h = &plan.helpers;
    let host = plan.host_memory.unwrap_or(0);
    let private = plan.private_memory;
    let mut out = Vec::new();
    if h.matcher.is_some() {
        out.push((codegen::matcher(host, private), "irm:match"));
    }
    if h.private_matcher.is_some() {
        out.push((codegen::matcher(private, private), "irm:match-resolved"));
    }
    if h.resolve.is_some() {
        out.push((resources::resolve(host, private), "irm:resolve"));
    }
    if let (Some(_), Some(layout), Some(wasi), Some(resolve)) =
        (h.init, plan.table, plan.wasi, h.resolve)
    {
        let imports = resources::ScanImports {
            fd_fdstat_get: wasi.fd_fdstat_get,
            fd_prestat_get: wasi.fd_prestat_get,
            fd_prestat_dir_name: wasi.fd_prestat_dir_name,
            resolve,
        };
        out.push((resources::init(host, private, layout, imports), "irm:scan"));
    }
    if let Some(has) = h.set_has {
        out.push((resources::set_has(private), "irm:set-has"));
        out.push((resources::set_insert(private, has), "irm:set-insert"));
        out.push((resources::set_remove(private), "irm:set-remove"));
    }
    out
}

/// Weaves `program` into `input` (binary): a core module, or a component
/// ([`component`]: one monitor instance between its lowered imports and its core code).
pub fn weave(input: &[u8], program: &Program, options: &WeaveOptions) -> Result<Woven, WeaveError> {
    if component::is_component(input) {
        component::weave(input, program, options)
    } else {
        weave_core(input, program, &options.into())
    }
}

/// Weaves `program` into the core module `input` (binary).
pub(crate) fn weave_core(
    input: &[u8],
    program: &Program,
    options: &CoreOptions,
) -> Result<Woven, WeaveError> {
    // Validates every module-level section, so no planning works on an invalid module;
    // bodies are validated while they are emitted, and the output again at the end.
    let mut info = module::ModuleInfo::scan(input)?;
    let bodies = std::mem::take(&mut info.bodies);
    let mut plan = plan::plan(&info, program, options)?;

    let mut reg = codegen::Registry::new(plan.dfa_start);
    let wrappers = plan
        .wrappers
        .iter()
        .map(|w| codegen::wrapper(program, &plan, &mut reg, w))
        .collect::<Result<Vec<_>, _>>()?;
    let helpers = helpers(&plan);

    let manifest =
        manifest::Manifest::assemble(program, &info, &plan, reg.codes.clone(), options.host_hooks);

    let mut global_names = Vec::new();
    for (pi, p) in program.policies.iter().enumerate() {
        if plan.effective[pi] {
            global_names.push(format!("irm:state:{}", p.name));
            global_names.extend(
                p.vars
                    .iter()
                    .map(|v| format!("irm:var:{}.{}", p.name, v.name)),
            );
        }
    }
    if plan.globals.busy.is_some() {
        global_names.push("irm:busy".into());
    }
    if plan.globals.ready.is_some() {
        global_names.push("irm:ready".into());
    }
    let gen = emit::Generated {
        wrapper_names: manifest
            .wrapped
            .iter()
            .map(|w| format!("irm:wrapper:{}.{}", w.module, w.field))
            .collect(),
        hook_names: plan
            .hooks
            .iter()
            .map(|h| format!("irm:hook:{}", program.events[h.event as usize].name))
            .collect(),
        global_names,
        wrappers,
        helpers,
        registry: reg,
        manifest_json: manifest.to_json()?,
        irm_version: VERSION,
    };
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let emitted = emit::emit(input, &plan, &gen, info.num_data, bodies, threads)?;
    let checked = match options.validate_output {
        true => validate::output(&emitted.wasm, &emitted.copied_mask),
        false => Ok(()),
    };
    if let Err(e) = checked {
        return Err(WeaveError::Internal {
            message: format!(
                "the woven module does not validate: {} (at byte offset {:#x} of the output)",
                e.message(),
                e.offset()
            ),
        });
    }

    let report = WeaveReport::assemble(
        program,
        &info,
        &mut plan,
        &emitted,
        input.len(),
        options.host_hooks,
    );
    Ok(Woven {
        wasm: emitted.wasm,
        report,
    })
}
