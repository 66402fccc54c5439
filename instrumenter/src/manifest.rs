//! The `irm.monitor` custom section: what a woven module carries about its monitor.
//!
//! It is JSON so that any tool can read it. It is *informative*: it lets `irm run` turn a
//! violation code read from the `irm:violation` global into a full report, and it lets a
//! second `irm weave` refuse to stack monitors. It is never a proof of enforcement: a
//! hostile module can forge it, so `irm run` must not skip its own checks (or trust the
//! codes it finds) because a module claims to be hardened.
use policy_lang::ir::{EventId, Phase, Program, RuntimeFault, ValType};
use serde::{Deserialize, Serialize};

use crate::module::ModuleInfo;
use crate::plan::Plan;
use crate::WeaveError;

/// Name of the custom section.
pub const SECTION: &str = "irm.monitor";
/// Version of the manifest layout; bumped on incompatible changes.
pub const FORMAT: u32 = 2;
/// Module name of the host hook imports (only with `WeaveOptions::host_hooks`).
pub const HOOK_MODULE: &str = "irm";
/// Export name of the diagnostics global (i32, 0 = no violation).
pub const VIOLATION_GLOBAL: &str = "irm:violation";

/// Where each Wasm parameter of an event goes among the hook's parameters in a
/// component's monitor, whose hooks pack them so that wide events stay within the 16
/// parameters a component function takes directly: 32-bit values (i32, f32 bits) two to
/// an i64 word, low half first; a 64-bit value in a word of its own (a half-filled word
/// before it keeps its high half 0). Returns each parameter's `(word, half)` (`Some(false)`
/// low, `Some(true)` high, `None` whole) and the number of words.
pub fn packed_slots(params: &[ValType]) -> (Vec<(usize, Option<bool>)>, usize) {
    let mut out = Vec::with_capacity(params.len());
    let mut words = 0;
    let mut low_pending = false;
    for t in params {
        match t {
            ValType::I32 | ValType::F32 if low_pending => {
                out.push((words - 1, Some(true)));
                low_pending = false;
            }
            ValType::I32 | ValType::F32 => {
                out.push((words, Some(false)));
                words += 1;
                low_pending = true;
            }
            ValType::I64 | ValType::F64 => {
                out.push((words, None));
                words += 1;
                low_pending = false;
            }
        }
    }
    (out, words)
}

/// Hook `kind` argument values (first parameter of every hook).
pub mod hook_kind {
    /// Before the policies decide; `code` is 0.
    pub const PRE: i32 = 0;
    /// An audit transition fired; `code` says which.
    pub const AUDIT: i32 = 1;
    /// A deny or a fault; called right before the trap.
    pub const DENY: i32 = 2;
    /// The call is suppressed; the import will not be called.
    pub const SUPPRESS: i32 = 3;
    /// The import returned; the last argument is its result.
    pub const POST: i32 = 4;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Version of the irm that wove the module.
    pub irm_version: String,
    pub program: Program,
    /// Indices of the policies compiled into the module (the others cannot be violated
    /// by it and were elided).
    pub effective_policies: Vec<usize>,
    /// Every code the woven code can put into `irm:violation` or pass to a hook.
    pub codes: Vec<Code>,
    pub wrapped: Vec<WrappedImport>,
    pub globals: MonitorGlobals,
    /// Present iff the module was woven with host hooks.
    pub hooks: Option<HookLayout>,
}

impl Manifest {
    /// The entry for `code`, if the module can produce it.
    pub fn code(&self, code: u32) -> Option<&Code> {
        self.codes.iter().find(|c| c.code == code)
    }
}

/// What a transition firing (or failing to evaluate) means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    Deny,
    Audit,
    Suppress,
    /// Evaluating the step failed; reported as a deny of the policy.
    Fault,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    /// Never 0.
    pub code: u32,
    pub kind: CodeKind,
    pub policy: usize,
    pub policy_name: String,
    /// Index into the policy's transitions; `None` for call-level faults (`RuntimeFault::OutPointer`, `Interrupted`, ...).
    pub transition: Option<usize>,
    pub phase: Phase,
    /// The fault, with its run-time value (`value`, `fd`) zero: host hooks receive that
    /// value as `extra` (see [`HookLayout`]), `RuntimeFault::with_value` puts it back.
    pub fault: Option<RuntimeFault>,
    pub event: EventId,
    /// `module.field`.
    pub import: String,
    /// The transition's reason, or a generated one for faults and reasonless transitions.
    pub reason: String,
    /// The transition's source location.
    pub origin: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedImport {
    pub event: EventId,
    pub module: String,
    pub field: String,
    /// Function index of the import declaration (unchanged by weaving).
    pub import_index: u32,
    /// Function index of its wrapper in the woven module.
    pub wrapper_index: u32,
}

/// Global indices of the monitor state in the woven module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorGlobals {
    /// The exported `irm:violation` global.
    pub violation: u32,
    /// Per policy of the program: its state global, `None` when elided.
    pub states: Vec<Option<u32>>,
    /// Per policy: one i64 global per variable (empty when elided).
    pub vars: Vec<Vec<u32>>,
    /// Set while a monitored call with post-phase work runs, and for good after a deny.
    #[serde(default)]
    pub busy: Option<u32>,
    /// Set once the descriptor table has been filled.
    #[serde(default)]
    pub ready: Option<u32>,
}

/// The host hook imports. Each is imported from [`HOOK_MODULE`] under `field` with type
/// `(kind i32, code i32, p0 i64, .., pn i64, extra i64) -> ()`: `kind` is one of
/// [`hook_kind`]; every Wasm parameter of the event is widened to i64 (i32
/// sign-extended, f32/f64 bit patterns); `extra` is the import's integer result for
/// `POST` and post-phase `AUDIT`/`DENY` (for a call without a result that hands out
/// handles behind `retptr` — a stream grant, `open-at`, `get-directories` — the first
/// handle it handed out at `POST`, or -1 for none), the run-time value of a fault (the offending
/// value of `VarOutOfRange`, the descriptor of `UnresolvedPath`, `UnknownDescriptor` and
/// `DescriptorLimit`), and 0 otherwise. The hooks of a component's monitor differ in two
/// ways: the event's parameters are packed into i64 words ([`packed_slots`]), and they
/// end with one `(ptr i32, len i32)` pair per string parameter of the event: the string
/// when it lies inside the memory the host reads, `(0, 0)` otherwise, so that the
/// component's host (which cannot read that memory) receives it as a `list<u8>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookLayout {
    pub module: String,
    pub hooks: Vec<Hook>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    pub event: EventId,
    pub field: String,
    /// Function index of the hook import in the woven module.
    pub func_index: u32,
    /// The event's Wasm parameter types, in the order they are passed (widened).
    pub params: Vec<ValType>,
}

impl Manifest {
    /// The manifest of `program` woven into the module `info` describes as `plan` says,
    /// with the `codes` its wrappers can produce.
    pub(crate) fn assemble(
        program: &Program,
        info: &ModuleInfo,
        plan: &Plan,
        codes: Vec<Code>,
        host_hooks: bool,
    ) -> Manifest {
        let wrapped = plan
            .wrappers
            .iter()
            .map(|w| {
                let imp = &info.func_imports[w.import as usize];
                WrappedImport {
                    event: w.event,
                    module: imp.module.to_string(),
                    field: imp.field.to_string(),
                    import_index: w.import,
                    wrapper_index: w.index,
                }
            })
            .collect();
        let hooks = host_hooks.then(|| HookLayout {
            module: HOOK_MODULE.to_string(),
            hooks: plan
                .hooks
                .iter()
                .map(|h| Hook {
                    event: h.event,
                    field: h.field.clone(),
                    func_index: h.func_index,
                    params: program.events[h.event as usize].wasm_params(),
                })
                .collect(),
        });
        Manifest {
            format: FORMAT,
            irm_version: crate::VERSION.to_string(),
            program: program.clone(),
            effective_policies: (0..program.policies.len())
                .filter(|&i| plan.effective[i])
                .collect(),
            codes,
            wrapped,
            globals: plan.globals.clone(),
            hooks,
        }
    }

    /// The contents of the `irm.monitor` section.
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, WeaveError> {
        serde_json::to_vec(self).map_err(|e| WeaveError::Internal {
            message: e.to_string(),
        })
    }
}

/// Reads the manifest of a woven module, or of the monitor inside a woven component:
/// `Ok(None)` when there is no `irm.monitor` section, an error when the section is
/// malformed.
pub fn read(wasm: &[u8]) -> Result<Option<Manifest>, WeaveError> {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(WeaveError::malformed)? {
            wasmparser::Payload::CustomSection(c) if c.name() == SECTION => {
                return serde_json::from_slice(c.data()).map(Some).map_err(|e| {
                    WeaveError::Manifest {
                        message: format!("{e} (section at byte {:#x})", c.data_offset()),
                    }
                });
            }
            _ => {}
        }
    }
    Ok(None)
}
