//! Code generation: one wrapper per wrapped import declaration, and the string matcher.
//!
//! A wrapper implements one call of the event exactly as `policy_lang::ir` specifies:
//!
//! ```text
//! block $deny
//!   [hook PRE]
//!   busy?                       -> Interrupted                      (busy flag)
//!   first call: fill the descriptor table (scan)                     (tracking programs)
//!   resolve the call's path parameters into the private memory      (tracking programs)
//!   for each effective policy with pre transitions on the event, in program order:
//!     first matching transition fires; guards on i64, faults -> viol := code; br $deny
//!     deny -> viol := code; br $deny   (first denying policy wins: later steps are pure)
//!   an audit while descriptor 2 is not the stderr found at start    -> AuditUndelivered
//!   unless suppressed: every out-pointer inside memory and aligned  -> OutPointer
//!   commit state/var temps; a suppression writes its audits and returns its value
//!   busy := 1; call the ORIGINAL import; busy := 0                  (post-phase work)
//!   the pre phase's audits (nothing ran between the guards and the import)
//!   post steps likewise; the descriptor table's change; return the results
//! end
//! busy := 1; [hook DENY | message through fd_write]; irm:violation := viol; unreachable
//! ```
//!
//! Guards read variables from the globals, which are only written at commit time, so
//! updates of one step see the values before the step (simultaneous assignment). Sets are
//! changed as their transition fires: nothing reads a policy's sets after its own step
//! in the same phase, and a deny leaves the monitor busy for good.
use std::collections::HashMap;

use policy_lang::descriptors::{self, Effect, Kind, MAX_FDS};
use policy_lang::handles::{self, Grant, Place, MAX_HANDLES};
use policy_lang::ir::{
    BinOp, EventId, Expr, ParamId, ParamType, Pattern, Phase, Program, RuntimeFault, Subject, UnOp,
    Verdict,
};
use policy_lang::path::MAX_PATH;
use policy_lang::wasi::{self, Role};
use wasm_encoder::{BlockType, Function, Instruction as I, ValType};

use crate::fngen::{mem, FnGen};
use crate::manifest::{hook_kind, Code, CodeKind};
use crate::plan::{to_wasm, Plan, WrapperPlan};
use crate::resources::{self, Layout, ENTRY, KIND_DIRECTORY, KIND_FILE, KIND_SOCKET};
use crate::WeaveError;

/// Everything generated code registers: violation codes, messages and DFA tables.
pub(crate) struct Registry {
    pub codes: Vec<Code>,
    index: HashMap<(usize, Option<usize>, EventId, Option<RuntimeFault>), u32>,
    /// Contents of the passive message segment.
    pub messages: Vec<u8>,
    /// Per code (index code - 1): offset and length of its message.
    message_at: Vec<(u32, u32)>,
    /// Contents of the private memory from `dfa_start` on.
    pub dfa_bytes: Vec<u8>,
    dfas: HashMap<Pattern, u32>,
    /// Where DFA tables start in the private memory.
    pub dfa_start: u32,
    pub uses_messages: bool,
}

impl Registry {
    pub fn new(dfa_start: u32) -> Self {
        Registry {
            codes: Vec::new(),
            index: HashMap::new(),
            messages: Vec::new(),
            message_at: Vec::new(),
            dfa_bytes: Vec::new(),
            dfas: HashMap::new(),
            dfa_start: dfa_start.next_multiple_of(8),
            uses_messages: false,
        }
    }

    pub fn uses_dfas(&self) -> bool {
        !self.dfas.is_empty()
    }

    /// Total bytes of the private memory in use.
    pub fn private_len(&self) -> u64 {
        self.dfa_start as u64 + self.dfa_bytes.len() as u64
    }

    /// The code of a decision of `policy` (transition `ti`, or the whole call) on
    /// `event`; a fault is registered with its run-time value zero.
    fn code(
        &mut self,
        program: &Program,
        event: EventId,
        policy: usize,
        ti: Option<usize>,
        fault: Option<RuntimeFault>,
    ) -> u32 {
        let fault = fault.map(|f| f.with_value(0));
        let key = (policy, ti, event, fault.clone());
        if let Some(&c) = self.index.get(&key) {
            return c;
        }
        let p = &program.policies[policy];
        let t = ti.map(|ti| &p.transitions[ti]);
        let ev = &program.events[event as usize];
        let kind = match (&fault, t.map(|t| &t.verdict)) {
            (Some(_), _) => CodeKind::Fault,
            (None, Some(Verdict::Deny)) => CodeKind::Deny,
            (None, Some(Verdict::Suppress(_))) => CodeKind::Suppress,
            _ => CodeKind::Audit,
        };
        let reason = match (&fault, t) {
            (Some(f), _) => f.reason(program, event, policy, ti),
            (None, Some(t)) => t.reason.clone().unwrap_or_else(|| match kind {
                CodeKind::Deny => format!("denied by the transition at {}", t.origin),
                CodeKind::Audit => format!("audited by the transition at {}", t.origin),
                _ => format!("suppressed by the transition at {}", t.origin),
            }),
            (None, None) => "denied".into(),
        };
        let code = self.codes.len() as u32 + 1;
        let msg = message(kind, &p.name, &ev.import_name(), &reason);
        self.message_at
            .push((self.messages.len() as u32, msg.len() as u32));
        if kind != CodeKind::Suppress {
            self.messages.extend_from_slice(msg.as_bytes());
        }
        self.codes.push(Code {
            code,
            kind,
            policy,
            policy_name: p.name.clone(),
            transition: ti,
            phase: match (t, &fault) {
                (Some(t), _) => t.phase,
                (None, Some(f)) => f.call_phase(),
                (None, None) => Phase::Pre,
            },
            fault: fault.clone(),
            event,
            import: ev.import_name(),
            reason,
            origin: t.map_or_else(String::new, |t| t.origin.clone()),
        });
        self.index.insert(key, code);
        code
    }

    /// Base address of `pattern`'s DFA in the private memory.
    fn dfa(&mut self, pattern: &Pattern, policy: &str, origin: &str) -> Result<u32, WeaveError> {
        if let Some(&b) = self.dfas.get(pattern) {
            return Ok(b);
        }
        let dfa = pattern
            .to_dfa()
            .map_err(|e| WeaveError::PatternTooComplex {
                policy: policy.into(),
                origin: origin.into(),
                pattern: format!("{pattern:?}"),
                message: e.to_string(),
            })?;
        while !self.dfa_bytes.len().is_multiple_of(8) {
            self.dfa_bytes.push(0);
        }
        let base = self.dfa_start + self.dfa_bytes.len() as u32;
        let n = dfa.state_count() as u32;
        let accept = base + 8 + n * 512;
        self.dfa_bytes.extend_from_slice(&accept.to_le_bytes());
        self.dfa_bytes.extend_from_slice(&dfa.start.to_le_bytes());
        // States fit in u16: MAX_DFA_STATES is far below 65536.
        for &q in &dfa.table {
            self.dfa_bytes.extend_from_slice(&(q as u16).to_le_bytes());
        }
        self.dfa_bytes
            .extend(dfa.accepting.iter().map(|&a| a as u8));
        self.dfas.insert(pattern.clone(), base);
        Ok(base)
    }
}

const _: () = assert!(policy_lang::pattern::MAX_DFA_STATES <= u16::MAX as usize);

pub(crate) fn message(kind: CodeKind, policy: &str, import: &str, reason: &str) -> String {
    match kind {
        CodeKind::Audit => format!("irm: audit: policy {policy}: {import}: {reason}\n"),
        _ => format!("irm: policy {policy} denied {import}: {reason}\n"),
    }
}

/// The scratch bytes one message needs at the top of host memory: iovec, nwritten, text.
pub(crate) fn scratch_len(msg_len: usize) -> u32 {
    (12 + msg_len as u32).next_multiple_of(8)
}

/// The matcher `(dfa_base, ptr, len) -> accepted` over the bytes of memory `data`,
/// tables in the private memory (layout: accept-table address u32, start state u32, u16
/// transitions, u8 flags).
pub(crate) fn matcher(data: u32, private: u32) -> Function {
    let mut g = FnGen::new(3);
    let (base, ptr, len) = (0, 1, 2);
    let q = g.local(ValType::I32);
    g.op(I::LocalGet(base));
    g.op(I::I32Load(mem(private, 4, 2)));
    g.op(I::LocalSet(q));
    let done = g.block();
    let lp = g.loop_();
    g.op(I::LocalGet(len));
    g.op(I::I32Eqz);
    g.br_if(done);
    g.op(I::LocalGet(base));
    g.op(I::LocalGet(q));
    g.op(I::I32Const(8));
    g.op(I::I32Shl);
    g.op(I::LocalGet(ptr));
    g.op(I::I32Load8U(mem(data, 0, 0)));
    g.op(I::I32Add);
    g.op(I::I32Const(1));
    g.op(I::I32Shl);
    g.op(I::I32Add);
    g.op(I::I32Load16U(mem(private, 8, 1)));
    g.op(I::LocalSet(q));
    g.op(I::LocalGet(ptr));
    g.op(I::I32Const(1));
    g.op(I::I32Add);
    g.op(I::LocalSet(ptr));
    g.op(I::LocalGet(len));
    g.op(I::I32Const(1));
    g.op(I::I32Sub);
    g.op(I::LocalSet(len));
    g.br(lp);
    g.end();
    g.end();
    g.op(I::LocalGet(base));
    g.op(I::I32Load(mem(private, 0, 2)));
    g.op(I::LocalGet(q));
    g.op(I::I32Add);
    g.op(I::I32Load8U(mem(private, 0, 0)));
    g.finish()
}

/// What a policy's step left behind for the commit, audit and suppression code.
struct StepOut {
    policy: usize,
    verdict: Option<u32>,
    /// (code, transition, verdict) of the audit and suppress transitions that may have fired.
    outcomes: Vec<(u32, usize, Verdict)>,
    state: Option<(u32, u32)>,
    vars: Vec<(u32, u32)>,
}

/// A path parameter resolved at the wrapper's start.
#[derive(Clone, Copy)]
struct Resolution {
    /// Local: the resolved length (> 0), or -3 out of bounds, -2 unresolved, -1 too long.
    status: u32,
    /// Its buffer in the private memory.
    buffer: u32,
    /// The descriptor parameter an unresolved path is relative to.
    dir: ParamId,
}

const OUT_OF_BOUNDS: i32 = -3;
const UNRESOLVED: i32 = -2;

struct WrapGen<'a> {
    program: &'a Program,
    plan: &'a Plan,
    reg: &'a mut Registry,
    g: FnGen,
    event: EventId,
    w: &'a WrapperPlan,
    params: Vec<ValType>,
    results: Vec<ValType>,
    deny: u32,
    viol: u32,
    extra: u32,
    result64: Option<u32>,
    /// Codes this wrapper can deny with (for the message chain).
    deny_codes: Vec<u32>,
    policy: usize,
    ti: usize,
    resolved: HashMap<ParamId, Resolution>,
    /// Scratch local for host calls that borrow host memory.
    scratch: Option<u32>,
}

pub(crate) fn wrapper(
    program: &Program,
    plan: &Plan,
    reg: &mut Registry,
    w: &WrapperPlan,
) -> Result<Function, WeaveError> {
    let ev = &program.events[w.event as usize];
    let params: Vec<ValType> = ev.wasm_params().into_iter().map(to_wasm).collect();
    let results: Vec<ValType> = ev.results.iter().copied().map(to_wasm).collect();
    let mut g = FnGen::new(params.len() as u32);
    let viol = g.local(ValType::I32);
    let extra = g.local(ValType::I64);
    let mut wg = WrapGen {
        program,
        plan,
        reg,
        g,
        event: w.event,
        w,
        params,
        results,
        deny: 0,
        viol,
        extra,
        result64: None,
        deny_codes: Vec::new(),
        policy: 0,
        ti: 0,
        resolved: HashMap::new(),
        scratch: None,
    };
    wg.body()?;
    Ok(wg.g.finish())
}

impl WrapGen<'_> {
    fn ev(&self) -> &policy_lang::ir::Event {
        &self.program.events[self.event as usize]
    }

    /// The catalogue role of parameter `p` of this (WASI) event.
    /// The descriptor table this event's descriptor parameters index: a component's
    /// (WASI 0.2 `descriptor` handles) for a WIT-named import, preview 1's otherwise.
    fn table(&self) -> Option<Layout> {
        if policy_lang::wit::split_interface(&self.ev().module).is_some() {
            self.plan.component_table
        } else {
            self.plan.table
        }
    }

    fn role(&self, p: ParamId) -> Option<Role> {
        let ev = self.ev();
        wasi::event_role(&ev.module, &ev.field, &ev.params.get(p as usize)?.name)
    }

    fn param_named(&self, name: &str) -> Option<ParamId> {
        self.ev()
            .params
            .iter()
            .position(|p| p.name == name)
            .map(|i| i as ParamId)
    }

    /// Wasm local of the first Wasm parameter of named parameter `p`.
    fn local_of(&self, p: ParamId) -> u32 {
        self.ev().wasm_param_index(p)
    }

    fn body(&mut self) -> Result<(), WeaveError> {
        self.deny = self.g.block();
        self.hook(hook_kind::PRE, None, None);
        if let Some(busy) = self.plan.globals.busy {
            self.g.op(I::GlobalGet(busy));
            self.g.if_(BlockType::Empty);
            self.call_fault(RuntimeFault::Interrupted);
            self.g.end();
        }
        if let (Some(ready), Some(init)) = (self.plan.globals.ready, self.plan.helpers.init) {
            self.g.op(I::GlobalGet(ready));
            self.g.op(I::I32Eqz);
            self.g.if_(BlockType::Empty);
            self.g.op(I::Call(init));
            self.g.if_(BlockType::Empty);
            self.g.op(I::I64Const(-1));
            self.g.op(I::LocalSet(self.extra));
            self.call_fault(RuntimeFault::DescriptorLimit { fd: 0 });
            self.g.end();
            self.g.op(I::I32Const(1));
            self.g.op(I::GlobalSet(ready));
            self.g.end();
        }
        self.resolve_paths();

        let pre = self.phase(Phase::Pre)?;
        self.check_audit_delivery(&pre);
        let suppressing = self.suppressing(&pre);
        self.check_out_pointers(suppressing);
        self.commit(&pre);
        for s in &pre {
            let Some(v) = s.verdict else { continue };
            for (code, _, verdict) in s.outcomes.clone() {
                let Verdict::Suppress(value) = verdict else {
                    continue;
                };
                self.g.op(I::LocalGet(v));
                self.g.op(I::I32Const(code as i32));
                self.g.op(I::I32Eq);
                self.g.if_(BlockType::Empty);
                self.audits(&pre);
                self.hook(hook_kind::SUPPRESS, Some(code), None);
                self.suppress_value(value, code)?;
                self.g.op(I::Return);
                self.g.end();
            }
        }
        let marks_busy =
            self.plan.globals.busy.is_some() && self.plan.view.has_post_work(self.event);
        if marks_busy {
            self.g.op(I::I32Const(1));
            self.g
                .op(I::GlobalSet(self.plan.globals.busy.expect("checked")));
        }
        for i in 0..self.params.len() as u32 {
            self.g.op(I::LocalGet(i));
        }
        self.g.op(I::Call(self.w.import));
        if marks_busy {
            self.g.op(I::I32Const(0));
            self.g
                .op(I::GlobalSet(self.plan.globals.busy.expect("checked")));
        }
        let effect = self.effect();
        let (grants, dropped) = match self.plan.handles {
            Some(_) => (handles::grants(self.ev()), handles::drops(self.ev())),
            None => (&[][..], None),
        };
        let has_post = self.program.policies.iter().enumerate().any(|(pi, p)| {
            self.plan.effective[pi]
                && p.transitions.iter().any(|t| {
                    t.event == self.event && (t.phase == Phase::Post || t.verdict == Verdict::Audit)
                })
        });
        if has_post
            || effect.is_some()
            || !grants.is_empty()
            || dropped.is_some()
            || !self.plan.hooks.is_empty()
        {
            let rl: Vec<u32> = self
                .results
                .clone()
                .into_iter()
                .map(|t| self.g.local(t))
                .collect();
            for &l in rl.iter().rev() {
                self.g.op(I::LocalSet(l));
            }
            if rl.len() == 1 && matches!(self.results[0], ValType::I32 | ValType::I64) {
                let r = self.g.local(ValType::I64);
                self.g.op(I::LocalGet(rl[0]));
                if self.results[0] == ValType::I32 {
                    self.g.op(I::I64ExtendI32S);
                }
                self.g.op(I::LocalSet(r));
                self.result64 = Some(r);
            }
            // The pre phase's audits, now that nothing can run between guards and import.
            self.audits(&pre);
            let handed = match self.result64 {
                Some(r) => Some(r),
                None => self.first_handle_handed(),
            };
            self.hook(hook_kind::POST, None, handed);
            let post = self.phase(Phase::Post)?;
            self.check_audit_delivery(&post);
            self.commit(&post);
            self.audits(&post);
            match (effect, self.result64) {
                (Some(e @ (Effect::OpenAt | Effect::Preopens | Effect::Drop)), _) => {
                    self.apply_component_effect(e)?;
                }
                (Some(effect), Some(r)) => {
                    self.g.op(I::LocalGet(r));
                    self.g.op(I::I64Eqz);
                    self.g.if_(BlockType::Empty);
                    self.apply_effect(effect);
                    self.g.end();
                }
                _ => {}
            }
            if !grants.is_empty() {
                self.apply_grants(grants)?;
            }
            if let Some(stream) = dropped {
                self.forget_stream(stream);
            }
            for &l in &rl {
                self.g.op(I::LocalGet(l));
            }
        }
        self.g.op(I::Return);
        self.g.end();

        // The violation path: `viol` holds the code. The monitor stays busy for good, so
        // an embedder that calls the instance again gets every monitored call denied.
        if let Some(busy) = self.plan.globals.busy {
            self.g.op(I::I32Const(1));
            self.g.op(I::GlobalSet(busy));
        }
        self.hook(hook_kind::DENY, None, Some(self.extra));
        if self.plan.fd_write.is_some() {
            let codes = std::mem::take(&mut self.deny_codes);
            for code in codes {
                self.g.op(I::LocalGet(self.viol));
                self.g.op(I::I32Const(code as i32));
                self.g.op(I::I32Eq);
                self.g.if_(BlockType::Empty);
                self.write_message(code, false, None);
                self.g.end();
            }
        }
        self.g.op(I::LocalGet(self.viol));
        self.g.op(I::GlobalSet(self.plan.globals.violation));
        self.g.op(I::Unreachable);
        Ok(())
    }

    /// The descriptor-table change of this call, when the module's monitor keeps one.
    fn effect(&self) -> Option<Effect> {
        self.table()?;
        let ev = self.ev();
        Effect::of_import(&ev.module, &ev.field)
    }

    /// Resolves, at the wrapper's start, every path parameter a live guard reads or the
    /// table needs (`path_open`'s `path`). Paths first, then link targets (against their link).
    fn resolve_paths(&mut self) {
        let (Some(layout), Some(resolve)) = (self.table(), self.plan.helpers.resolve) else {
            return;
        };
        let mut wanted: Vec<ParamId> = Vec::new();
        for (pi, p) in self.program.policies.iter().enumerate() {
            if !self.plan.effective[pi] {
                continue;
            }
            for t in p.transitions.iter().filter(|t| t.event == self.event) {
                for e in t.exprs() {
                    e.visit(&mut |x| {
                        if let Expr::Str(Subject::Resolved(q), _) = x {
                            if !wanted.contains(q) {
                                wanted.push(*q);
                            }
                        }
                    });
                }
            }
        }
        if matches!(self.effect(), Some(Effect::Open | Effect::OpenAt)) {
            if let Some(p) = self.param_named("path") {
                if !wanted.contains(&p) {
                    wanted.push(p);
                }
            }
        }
        // Links before their targets.
        let mut order: Vec<ParamId> = Vec::new();
        for &q in &wanted {
            if let Some(Role::LinkTarget { link }) = self.role(q) {
                if let Some(l) = self.param_named(link) {
                    if !order.contains(&l) {
                        order.push(l);
                    }
                }
            }
        }
        for &q in &wanted {
            if !order.contains(&q) {
                order.push(q);
            }
        }
        order.sort_by_key(|&q| matches!(self.role(q), Some(Role::LinkTarget { .. })));
        let host = self.plan.host_memory.unwrap_or(0);
        let private = self.plan.private_memory;
        for (k, q) in order.into_iter().enumerate() {
            let buffer = layout.resolved(k as u32);
            let status = self.g.local(ValType::I32);
            let (ptr, len) = (self.local_of(q), self.local_of(q) + 1);
            let role = self.role(q);
            let dir = match role {
                Some(Role::Path { dir }) => self.param_named(dir),
                Some(Role::LinkTarget { link }) => self
                    .param_named(link)
                    .and_then(|l| self.resolved.get(&l))
                    .map(|r| r.dir),
                _ => None,
            }
            .unwrap_or(0);
            let done = self.g.block();
            // Out of bounds of the host memory.
            self.g.op(I::I32Const(OUT_OF_BOUNDS));
            self.g.op(I::LocalSet(status));
            self.in_bounds(ptr, len, host);
            self.g.op(I::I32Eqz);
            self.g.br_if(done);
            // Absolute: the directory does not matter.
            self.g.op(I::LocalGet(len));
            self.g.op(I::If(BlockType::Result(ValType::I32)));
            self.g.op(I::LocalGet(ptr));
            self.g.op(I::I32Load8U(mem(host, 0, 0)));
            self.g.op(I::I32Const(b'/' as i32));
            self.g.op(I::I32Eq);
            self.g.op(I::Else);
            self.g.op(I::I32Const(0));
            self.g.op(I::End);
            self.g.if_(BlockType::Empty);
            self.call_resolve(resolve, buffer, status, (Base::Root, ptr, len));
            self.g.br(done);
            self.g.end();
            self.g.op(I::I32Const(UNRESOLVED));
            self.g.op(I::LocalSet(status));
            match role {
                Some(Role::LinkTarget { link }) => {
                    let Some(link) = self
                        .param_named(link)
                        .and_then(|l| self.resolved.get(&l))
                        .copied()
                    else {
                        self.g.br(done);
                        self.g.end();
                        continue;
                    };
                    self.g.op(I::LocalGet(link.status));
                    self.g.op(I::I32Const(0));
                    self.g.op(I::I32LeS);
                    self.g.br_if(done);
                    self.call_resolve(resolve, buffer, status, (Base::ParentOf(link), ptr, len));
                }
                _ => {
                    // The directory's known path: an entry with a path length.
                    let fd = self.local_of(dir);
                    self.g.op(I::LocalGet(fd));
                    self.g.op(I::I32Const(MAX_FDS as i32));
                    self.g.op(I::I32GeU);
                    self.g.br_if(done);
                    self.entry_addr(fd, layout);
                    self.g.op(I::I32Load(mem(private, 4, 2)));
                    self.g.op(I::I32Eqz);
                    self.g.br_if(done);
                    self.call_resolve(
                        resolve,
                        buffer,
                        status,
                        (Base::Descriptor(fd, layout), ptr, len),
                    );
                }
            }
            self.g.end();
            self.resolved.insert(
                q,
                Resolution {
                    status,
                    buffer,
                    dir,
                },
            );
        }
    }

    /// status := resolve(base, base_len, ptr, len, buffer).
    fn call_resolve(
        &mut self,
        resolve: u32,
        buffer: u32,
        status: u32,
        (base, ptr, len): (Base, u32, u32),
    ) {
        let private = self.plan.private_memory;
        match base {
            Base::Root => {
                self.g.op(I::I32Const(0));
                self.g.op(I::I32Const(1));
            }
            Base::Descriptor(fd, layout) => {
                self.path_slot(fd, layout);
                self.entry_addr(fd, layout);
                self.g.op(I::I32Load(mem(private, 4, 2)));
            }
            Base::ParentOf(link) => {
                // The parent of the link's resolved path: up to its last `/` (the root
                // when that is the first byte).
                let n = self.g.local(ValType::I32);
                self.g.op(I::LocalGet(link.status));
                self.g.op(I::LocalSet(n));
                let found = self.g.block();
                let back = self.g.loop_();
                self.g.op(I::LocalGet(n));
                self.g.op(I::I32Const(1));
                self.g.op(I::I32Sub);
                self.g.op(I::LocalTee(n));
                self.g.op(I::I32Eqz);
                self.g.br_if(found);
                self.g.op(I::I32Const(link.buffer as i32));
                self.g.op(I::LocalGet(n));
                self.g.op(I::I32Add);
                self.g.op(I::I32Load8U(mem(private, 0, 0)));
                self.g.op(I::I32Const(b'/' as i32));
                self.g.op(I::I32Ne);
                self.g.br_if(back);
                self.g.end();
                self.g.end();
                self.g.op(I::I32Const(link.buffer as i32));
                self.g.op(I::LocalGet(n));
                self.g.op(I::I32Const(1));
                self.g.op(I::LocalGet(n));
                self.g.op(I::Select);
            }
        }
        self.g.op(I::LocalGet(ptr));
        self.g.op(I::LocalGet(len));
        self.g.op(I::I32Const(buffer as i32));
        self.g.op(I::Call(resolve));
        self.g.op(I::LocalSet(status));
    }

    /// Pushes the private address of descriptor `fd`'s table entry (fd < MAX_FDS).
    fn entry_addr(&mut self, fd: u32, layout: Layout) {
        self.g.op(I::LocalGet(fd));
        self.g.op(I::I32Const(ENTRY as i32));
        self.g.op(I::I32Mul);
        self.g.op(I::I32Const(layout.table() as i32));
        self.g.op(I::I32Add);
    }

    /// Pushes the kind code of descriptor or stream-handle parameter `p`.
    fn param_kind(&mut self, p: ParamId) {
        let local = self.local_of(p);
        let ev = self.ev();
        let stream = ev
            .params
            .get(p as usize)
            .and_then(|x| handles::stream_param(ev, &x.name));
        match (stream, self.plan.handles) {
            (Some(stream), Some(base)) => {
                self.g.op(I::LocalGet(local));
                self.g.op(I::I32Const(MAX_HANDLES as i32));
                self.g.op(I::I32LtU);
                self.g.op(I::If(BlockType::Result(ValType::I32)));
                self.g.op(I::LocalGet(local));
                self.g.op(I::I32Load8U(mem(
                    self.plan.private_memory,
                    (base + stream as u32 * MAX_HANDLES).into(),
                    0,
                )));
                self.g.op(I::Else);
                self.g.op(I::I32Const(Kind::Closed as i32));
                self.g.op(I::End);
            }
            // No stream table in this module: every handle reads as closed.
            (Some(_), None) => self.g.op(I::I32Const(Kind::Closed as i32)),
            (None, _) => self.kind_of(local, self.table()),
        }
    }

    /// Records the streams a successful grant handed out (`policy_lang::handles`): the
    /// flat result, or the handles behind `retptr` when its discriminant is `ok` (0).
    fn apply_grants(&mut self, grants: &[Grant]) -> Result<(), WeaveError> {
        let base = self.plan.handles.expect("grants only with a stream table");
        let private = self.plan.private_memory;
        let behind = grants.iter().any(|g| matches!(g.at, Place::Ok(_)));
        let retptr = self.param_named("retptr").map(|p| self.local_of(p));
        let (retptr, host) = match (behind, retptr, self.plan.host_memory) {
            (false, _, _) => (0, 0),
            (true, Some(r), Some(m)) => (r, m),
            _ => {
                return Err(WeaveError::Internal {
                    message: format!(
                    "{} hands out streams behind `retptr`, but the monitor has no retptr or memory",
                    self.ev().name
                ),
                })
            }
        };
        if behind {
            self.g.op(I::LocalGet(retptr));
            self.g.op(I::I32Load8U(mem(host, 0, 0)));
            self.g.op(I::I32Eqz);
            self.g.if_(BlockType::Empty);
        }
        let h = self.g.local(ValType::I32);
        for g in grants {
            match g.at {
                Place::Result => {
                    let Some(r) = self.result64 else {
                        return Err(WeaveError::Internal {
                            message: format!("{} returns no handle", self.ev().name),
                        });
                    };
                    self.g.op(I::LocalGet(r));
                    self.g.op(I::I32WrapI64);
                }
                Place::Ok(off) => {
                    self.g.op(I::LocalGet(retptr));
                    self.g.op(I::I32Load(mem(host, off.into(), 2)));
                }
            }
            self.g.op(I::LocalTee(h));
            self.g.op(I::I32Const(MAX_HANDLES as i32));
            self.g.op(I::I32GeU);
            self.g.if_(BlockType::Empty);
            self.g.op(I::LocalGet(h));
            self.g.op(I::I64ExtendI32U);
            self.g.op(I::LocalSet(self.extra));
            self.call_fault(RuntimeFault::DescriptorLimit { fd: 0 });
            self.g.end();
            self.g.op(I::LocalGet(h));
            self.g.op(I::I32Const(g.kind as i32));
            self.g.op(I::I32Store8(mem(
                private,
                (base + g.stream as u32 * MAX_HANDLES).into(),
                0,
            )));
        }
        if behind {
            self.g.end();
        }
        Ok(())
    }

    /// Forgets the dropped stream handle `self` (the drop's one parameter).
    fn forget_stream(&mut self, stream: handles::Stream) {
        let base = self.plan.handles.expect("drops only with a stream table");
        self.g.op(I::LocalGet(0));
        self.g.op(I::I32Const(MAX_HANDLES as i32));
        self.g.op(I::I32LtU);
        self.g.if_(BlockType::Empty);
        self.g.op(I::LocalGet(0));
        self.g.op(I::I32Const(Kind::Closed as i32));
        self.g.op(I::I32Store8(mem(
            self.plan.private_memory,
            (base + stream as u32 * MAX_HANDLES).into(),
            0,
        )));
        self.g.end();
    }

    /// Pushes the kind code of the descriptor in local `fd` (closed past the table).
    fn kind_of(&mut self, fd: u32, table: Option<Layout>) {
        let Some(layout) = table else {
            // No table in this module: every descriptor reads as closed.
            self.g.op(I::I32Const(Kind::Closed as i32));
            return;
        };
        self.g.op(I::LocalGet(fd));
        self.g.op(I::I32Const(MAX_FDS as i32));
        self.g.op(I::I32LtU);
        self.g.op(I::If(BlockType::Result(ValType::I32)));
        self.entry_addr(fd, layout);
        self.g.op(I::I32Load8U(mem(self.plan.private_memory, 0, 0)));
        self.g.op(I::Else);
        self.g.op(I::I32Const(Kind::Closed as i32));
        self.g.op(I::End);
    }

    /// Pushes 1 when `ptr + len` (locals) lies within memory `m`, else 0.
    fn in_bounds(&mut self, ptr: u32, len: u32, m: u32) {
        self.g.op(I::LocalGet(ptr));
        self.g.op(I::I64ExtendI32U);
        self.g.op(I::LocalGet(len));
        self.g.op(I::I64ExtendI32U);
        self.g.op(I::I64Add);
        self.g.op(I::MemorySize(m));
        self.g.op(I::I64ExtendI32U);
        self.g.op(I::I64Const(16));
        self.g.op(I::I64Shl);
        self.g.op(I::I64LeU);
    }

    /// A local set to 1 when a suppression fired in `steps`.
    fn suppressing(&mut self, steps: &[StepOut]) -> Option<u32> {
        let codes: Vec<(u32, u32)> = steps
            .iter()
            .filter_map(|s| s.verdict.map(|v| (s, v)))
            .flat_map(|(s, v)| {
                s.outcomes
                    .iter()
                    .filter(|(_, _, verdict)| matches!(verdict, Verdict::Suppress(_)))
                    .map(move |(c, _, _)| (v, *c))
            })
            .collect();
        if codes.is_empty() {
            return None;
        }
        let flag = self.g.local(ValType::I32);
        for (k, (v, code)) in codes.iter().enumerate() {
            self.g.op(I::LocalGet(*v));
            self.g.op(I::I32Const(*code as i32));
            self.g.op(I::I32Eq);
            if k > 0 {
                self.g.op(I::I32Or);
            }
        }
        self.g.op(I::LocalSet(flag));
        Some(flag)
    }

    /// Denies an audit of a policy without the opt-out while descriptor 2 is not the
    /// stderr found at start.
    fn check_audit_delivery(&mut self, steps: &[StepOut]) {
        if self.plan.table.is_none() {
            return;
        }
        for s in steps {
            let Some(v) = s.verdict else { continue };
            if self.program.policies[s.policy].allow_undelivered_audits {
                continue;
            }
            for (code, ti, verdict) in s.outcomes.clone() {
                if verdict != Verdict::Audit {
                    continue;
                }
                let fd2 = self.g.local(ValType::I32);
                self.g.op(I::I32Const(2));
                self.g.op(I::LocalSet(fd2));
                self.g.op(I::LocalGet(v));
                self.g.op(I::I32Const(code as i32));
                self.g.op(I::I32Eq);
                self.kind_of(fd2, self.plan.table);
                self.g.op(I::I32Const(Kind::Stderr as i32));
                self.g.op(I::I32Ne);
                self.g.op(I::I32And);
                self.g.if_(BlockType::Empty);
                let c = self.reg.code(
                    self.program,
                    self.event,
                    s.policy,
                    Some(ti),
                    Some(RuntimeFault::AuditUndelivered),
                );
                self.fail(c);
                self.g.end();
            }
        }
    }

    /// Denies the call when an out-pointer parameter the catalogue knows lies outside
    /// the host memory or is misaligned (unless the call is suppressed).
    fn check_out_pointers(&mut self, suppressing: Option<u32>) {
        let Some(host) = self.plan.host_memory else {
            return;
        };
        let outs: Vec<(ParamId, u32, u32)> = (0..self.ev().params.len() as ParamId)
            .filter_map(|p| match self.role(p) {
                Some(Role::Out {
                    size,
                    align,
                    size_p0,
                }) => Some((p, if self.w.preview0 { size_p0 } else { size }, align)),
                _ => None,
            })
            .collect();
        if outs.is_empty() {
            return;
        }
        if let Some(flag) = suppressing {
            self.g.op(I::LocalGet(flag));
            self.g.op(I::I32Eqz);
            self.g.if_(BlockType::Empty);
        }
        let owner = self.program.owner(self.event);
        for (p, size, align) in outs {
            let l = self.local_of(p);
            self.g.op(I::LocalGet(l));
            self.g.op(I::I64ExtendI32U);
            self.g.op(I::I64Const(size as i64));
            self.g.op(I::I64Add);
            self.g.op(I::MemorySize(host));
            self.g.op(I::I64ExtendI32U);
            self.g.op(I::I64Const(16));
            self.g.op(I::I64Shl);
            self.g.op(I::I64GtU);
            self.g.op(I::LocalGet(l));
            self.g.op(I::I32Const(align as i32 - 1));
            self.g.op(I::I32And);
            self.g.op(I::I32Or);
            self.g.if_(BlockType::Empty);
            let code = self.reg.code(
                self.program,
                self.event,
                owner,
                None,
                Some(RuntimeFault::OutPointer { param: p }),
            );
            self.fail(code);
            self.g.end();
        }
        if suppressing.is_some() {
            self.g.end();
        }
    }

    /// The descriptor table's change after a successful call (`result == 0`).
    fn apply_effect(&mut self, effect: Effect) {
        let layout = self.plan.table.expect("effects only with a table");
        let host = self.plan.host_memory.unwrap_or(0);
        let private = self.plan.private_memory;
        let arg = |w: &Self, name: &str| w.param_named(name).map(|p| w.local_of(p));
        match effect {
            Effect::Open | Effect::Accept => {
                let out = match effect {
                    Effect::Open => "opened_fd",
                    _ => "ro_fd",
                };
                let Some(out) = arg(self, out) else { return };
                let fd = self.g.local(ValType::I32);
                self.g.op(I::LocalGet(out));
                self.g.op(I::I32Load(mem(host, 0, 2)));
                self.g.op(I::LocalSet(fd));
                self.check_descriptor_limit(fd);
                let entry = self.g.local(ValType::I32);
                self.entry_addr(fd, layout);
                self.g.op(I::LocalSet(entry));
                if effect == Effect::Accept {
                    self.store_entry(
                        entry,
                        |g| g.op(I::I32Const(KIND_SOCKET)),
                        |g| g.op(I::I32Const(1)),
                    );
                    return;
                }
                // The file type the host reports for the new descriptor.
                let wasi = self.plan.wasi.expect("a table has the scan's functions");
                let scratch = self.scratch_local();
                let kind = self.g.local(ValType::I32);
                resources::borrow_scratch(&mut self.g, host, private, layout, scratch);
                self.g.op(I::I32Const(0));
                self.g.op(I::LocalSet(kind));
                self.g.op(I::LocalGet(fd));
                self.g.op(I::LocalGet(scratch));
                self.g.op(I::Call(wasi.fd_fdstat_get));
                self.g.op(I::I32Eqz);
                self.g.if_(BlockType::Empty);
                self.g.op(I::LocalGet(scratch));
                self.g.op(I::I32Load8U(mem(host, 0, 0)));
                self.g.op(I::LocalSet(kind));
                self.g.end();
                resources::return_scratch(&mut self.g, host, private, layout, scratch);
                let rights = arg(self, "fs_rights_base");
                let fdflags = arg(self, "fdflags");
                let oflags = arg(self, "oflags");
                self.store_entry(
                    entry,
                    |g| {
                        // directory 3 -> directory; sockets 5, 6 -> socket; else file.
                        g.op(I::LocalGet(kind));
                        g.op(I::I32Const(3));
                        g.op(I::I32Eq);
                        g.op(I::If(BlockType::Result(ValType::I32)));
                        g.op(I::I32Const(KIND_DIRECTORY));
                        g.op(I::Else);
                        g.op(I::LocalGet(kind));
                        g.op(I::I32Const(5));
                        g.op(I::I32Sub);
                        g.op(I::I32Const(2));
                        g.op(I::I32LtU);
                        g.op(I::If(BlockType::Result(ValType::I32)));
                        g.op(I::I32Const(KIND_SOCKET));
                        g.op(I::Else);
                        g.op(I::I32Const(KIND_FILE));
                        g.op(I::End);
                        g.op(I::End);
                    },
                    |g| {
                        // `policy_lang::descriptors::opens_for_writing`.
                        match rights {
                            Some(r) => {
                                g.op(I::LocalGet(r));
                                g.op(I::I64Const(WRITE_RIGHTS));
                                g.op(I::I64And);
                                g.op(I::I64Const(0));
                                g.op(I::I64Ne);
                            }
                            None => g.op(I::I32Const(0)),
                        }
                        or_any_bits(g, fdflags, 1);
                        or_any_bits(g, oflags, WRITE_OFLAGS);
                    },
                );
                self.store_opened_path(fd, entry, layout);
            }
            // A component's: [`Self::apply_component_effect`].
            Effect::OpenAt | Effect::Preopens | Effect::Drop => {}
            Effect::Close => {
                let Some(fd) = arg(self, "fd") else { return };
                self.forget_descriptor(fd, layout);
            }
            Effect::Renumber => {
                let (Some(from), Some(to)) = (arg(self, "fd"), arg(self, "to")) else {
                    return;
                };
                // `policy_lang::descriptors::Descriptors::apply`: nothing when they are
                // equal; a fault when `to` is beyond the table; else `to` becomes what
                // `from` was (closed when `from` is beyond the table) and `from` closed.
                self.g.op(I::LocalGet(from));
                self.g.op(I::LocalGet(to));
                self.g.op(I::I32Ne);
                self.g.if_(BlockType::Empty);
                self.check_descriptor_limit(to);
                self.g.op(I::LocalGet(from));
                self.g.op(I::I32Const(MAX_FDS as i32));
                self.g.op(I::I32LtU);
                self.g.if_(BlockType::Empty);
                // to's entry and path := from's; from := closed.
                self.entry_addr(to, layout);
                self.entry_addr(from, layout);
                self.g.op(I::I64Load(mem(private, 0, 3)));
                self.g.op(I::I64Store(mem(private, 0, 3)));
                for fd in [to, from] {
                    self.path_slot(fd, layout);
                }
                self.entry_addr(to, layout);
                self.g.op(I::I32Load(mem(private, 4, 2)));
                self.g.op(I::MemoryCopy {
                    src_mem: private,
                    dst_mem: private,
                });
                self.entry_addr(from, layout);
                self.g.op(I::I64Const(0));
                self.g.op(I::I64Store(mem(private, 0, 3)));
                self.g.op(I::Else);
                self.entry_addr(to, layout);
                self.g.op(I::I64Const(0));
                self.g.op(I::I64Store(mem(private, 0, 3)));
                self.g.end();
                self.g.end();
            }
        }
    }

    /// Records the resolved `path` parameter, when it resolved, as the path of the
    /// descriptor in local `fd` (< `MAX_FDS`) whose entry is at local `entry`.
    fn store_opened_path(&mut self, fd: u32, entry: u32, layout: Layout) {
        let Some(r) = self
            .param_named("path")
            .and_then(|p| self.resolved.get(&p))
            .copied()
        else {
            return;
        };
        self.copy_path(fd, entry, layout, r.buffer, r.status);
    }

    /// When local `status` (a resolution's length) is positive: copies that many bytes
    /// from resolution buffer `buffer` into descriptor `fd`'s path and records the length
    /// in its entry at local `entry`.
    fn copy_path(&mut self, fd: u32, entry: u32, layout: Layout, buffer: u32, status: u32) {
        let private = self.plan.private_memory;
        self.g.op(I::LocalGet(status));
        self.g.op(I::I32Const(0));
        self.g.op(I::I32GtS);
        self.g.if_(BlockType::Empty);
        self.path_slot(fd, layout);
        self.g.op(I::I32Const(buffer as i32));
        self.g.op(I::LocalGet(status));
        self.g.op(I::MemoryCopy {
            src_mem: private,
            dst_mem: private,
        });
        self.g.op(I::LocalGet(entry));
        self.g.op(I::LocalGet(status));
        self.g.op(I::I32Store(mem(private, 4, 2)));
        self.g.end();
    }

    /// Closes descriptor `fd` (a local) in the table, when it is inside it.
    fn forget_descriptor(&mut self, fd: u32, layout: Layout) {
        self.g.op(I::LocalGet(fd));
        self.g.op(I::I32Const(MAX_FDS as i32));
        self.g.op(I::I32LtU);
        self.g.if_(BlockType::Empty);
        self.entry_addr(fd, layout);
        self.g.op(I::I64Const(0));
        self.g.op(I::I64Store(mem(self.plan.private_memory, 0, 3)));
        self.g.end();
    }

    /// Pushes the private address of descriptor `fd`'s path (fd < MAX_FDS).
    fn path_slot(&mut self, fd: u32, layout: Layout) {
        self.g.op(I::LocalGet(fd));
        self.g.op(I::I32Const(MAX_PATH as i32));
        self.g.op(I::I32Mul);
        self.g.op(I::I32Const(layout.paths() as i32));
        self.g.op(I::I32Add);
    }

    /// Faults (`DescriptorLimit`) when the handle in local `h` is beyond the table.
    fn check_descriptor_limit(&mut self, h: u32) {
        self.g.op(I::LocalGet(h));
        self.g.op(I::I32Const(MAX_FDS as i32));
        self.g.op(I::I32GeU);
        self.g.if_(BlockType::Empty);
        self.g.op(I::LocalGet(h));
        self.g.op(I::I64ExtendI32U);
        self.g.op(I::LocalSet(self.extra));
        self.call_fault(RuntimeFault::DescriptorLimit { fd: 0 });
        self.g.end();
    }

    /// A component's descriptor-table change (`policy_lang::descriptors::Effect`,
    /// `OpenAt`, `Preopens`, `Drop`), read from what the host wrote behind `retptr`:
    /// `open-at`'s `result<descriptor, error-code>` (the handle at 4 when the byte at 0
    /// is `ok`), `get-directories`' `list<tuple<descriptor, string>>` (pointer and
    /// length; 12-byte elements: handle, name pointer, name length).
    fn apply_component_effect(&mut self, effect: Effect) -> Result<(), WeaveError> {
        let layout = self.table().expect("effects only with a table");
        if effect == Effect::Drop {
            self.forget_descriptor(self.local_of(0), layout);
            return Ok(());
        }
        let (Some(retptr), Some(host)) = (
            self.param_named("retptr").map(|p| self.local_of(p)),
            self.plan.host_memory,
        ) else {
            return Err(WeaveError::Internal {
                message: format!(
                    "{} hands out descriptors behind `retptr`, but the monitor has no retptr or memory",
                    self.ev().name
                ),
            });
        };
        let h = self.g.local(ValType::I32);
        let entry = self.g.local(ValType::I32);
        if effect == Effect::OpenAt {
            let arg = |w: &Self, name: &str| w.param_named(name).map(|p| w.local_of(p));
            let (open_flags, flags) = (arg(self, "open_flags"), arg(self, "flags"));
            self.g.op(I::LocalGet(retptr));
            self.g.op(I::I32Load8U(mem(host, 0, 0)));
            self.g.op(I::I32Eqz);
            self.g.if_(BlockType::Empty);
            self.g.op(I::LocalGet(retptr));
            self.g.op(I::I32Load(mem(host, 4, 2)));
            self.g.op(I::LocalSet(h));
            self.check_descriptor_limit(h);
            self.entry_addr(h, layout);
            self.g.op(I::LocalSet(entry));
            self.store_entry(
                entry,
                // `policy_lang::descriptors::opened_at_kind`.
                |g| match open_flags {
                    Some(o) => {
                        g.op(I::I32Const(KIND_DIRECTORY));
                        g.op(I::I32Const(KIND_FILE));
                        g.op(I::LocalGet(o));
                        g.op(I::I32Const(descriptors::OPEN_FLAGS_DIRECTORY as i32));
                        g.op(I::I32And);
                        g.op(I::Select);
                    }
                    None => g.op(I::I32Const(KIND_FILE)),
                },
                // `policy_lang::descriptors::opens_at_for_writing`.
                |g| {
                    let write = descriptors::DESCRIPTOR_FLAGS_WRITE
                        | descriptors::DESCRIPTOR_FLAGS_MUTATE_DIRECTORY;
                    let changes = descriptors::OPEN_FLAGS_CREATE | descriptors::OPEN_FLAGS_TRUNCATE;
                    g.op(I::I32Const(0));
                    or_any_bits(g, flags, write);
                    or_any_bits(g, open_flags, changes);
                },
            );
            self.store_opened_path(h, entry, layout);
            self.g.end();
            return Ok(());
        }
        // `get-directories`: each element's handle is a directory, with its name as path
        // when the name is absolute (`policy_lang::descriptors::preopened_directory`).
        let resolve = self
            .plan
            .helpers
            .resolve
            .ok_or_else(|| WeaveError::Internal {
                message: "a descriptor table without the resolver".into(),
            })?;
        let (element, end) = (self.g.local(ValType::I32), self.g.local(ValType::I32));
        let (name, name_len, status) = (
            self.g.local(ValType::I32),
            self.g.local(ValType::I32),
            self.g.local(ValType::I32),
        );
        self.g.op(I::LocalGet(retptr));
        self.g.op(I::I32Load(mem(host, 0, 2)));
        self.g.op(I::LocalTee(element));
        self.g.op(I::LocalGet(retptr));
        self.g.op(I::I32Load(mem(host, 4, 2)));
        self.g.op(I::I32Const(12));
        self.g.op(I::I32Mul);
        self.g.op(I::I32Add);
        self.g.op(I::LocalSet(end));
        let done = self.g.block();
        let next = self.g.loop_();
        self.g.op(I::LocalGet(element));
        self.g.op(I::LocalGet(end));
        self.g.op(I::I32GeU);
        self.g.br_if(done);
        self.g.op(I::LocalGet(element));
        self.g.op(I::I32Load(mem(host, 0, 2)));
        self.g.op(I::LocalSet(h));
        self.g.op(I::LocalGet(element));
        self.g.op(I::I32Load(mem(host, 4, 2)));
        self.g.op(I::LocalSet(name));
        self.g.op(I::LocalGet(element));
        self.g.op(I::I32Load(mem(host, 8, 2)));
        self.g.op(I::LocalSet(name_len));
        self.check_descriptor_limit(h);
        self.entry_addr(h, layout);
        self.g.op(I::LocalSet(entry));
        self.store_entry(
            entry,
            |g| g.op(I::I32Const(KIND_DIRECTORY)),
            |g| g.op(I::I32Const(1)),
        );
        // An absolute name, normalised into a resolution buffer, then into the slot.
        self.g.op(I::LocalGet(name_len));
        self.g.op(I::If(BlockType::Result(ValType::I32)));
        self.g.op(I::LocalGet(name));
        self.g.op(I::I32Load8U(mem(host, 0, 0)));
        self.g.op(I::I32Const(b'/' as i32));
        self.g.op(I::I32Eq);
        self.g.op(I::Else);
        self.g.op(I::I32Const(0));
        self.g.op(I::End);
        self.g.if_(BlockType::Empty);
        let buffer = layout.resolved(0);
        self.call_resolve(resolve, buffer, status, (Base::Root, name, name_len));
        self.copy_path(h, entry, layout, buffer, status);
        self.g.end();
        self.g.op(I::LocalGet(element));
        self.g.op(I::I32Const(12));
        self.g.op(I::I32Add);
        self.g.op(I::LocalSet(element));
        self.g.br(next);
        self.g.end();
        self.g.end();
        Ok(())
    }

    /// Writes the table entry at `entry` (a local): kind, writable, no path yet.
    fn store_entry(
        &mut self,
        entry: u32,
        kind: impl FnOnce(&mut FnGen),
        writable: impl FnOnce(&mut FnGen),
    ) {
        let private = self.plan.private_memory;
        self.g.op(I::LocalGet(entry));
        kind(&mut self.g);
        self.g.op(I::I32Store8(mem(private, 0, 0)));
        self.g.op(I::LocalGet(entry));
        writable(&mut self.g);
        self.g.op(I::I32Store8(mem(private, 1, 0)));
        self.g.op(I::LocalGet(entry));
        self.g.op(I::I32Const(0));
        self.g.op(I::I32Store(mem(private, 4, 2)));
    }

    fn scratch_local(&mut self) -> u32 {
        match self.scratch {
            Some(l) => l,
            None => {
                let l = self.g.local(ValType::I32);
                self.scratch = Some(l);
                l
            }
        }
    }

    fn suppress_value(&mut self, value: Option<i64>, code: u32) -> Result<(), WeaveError> {
        let c = &self.reg.codes[code as usize - 1];
        let err = |message: String| WeaveError::UnsupportedProgram {
            policy: c.policy_name.clone(),
            origin: c.origin.clone(),
            message,
        };
        match (self.results.as_slice(), value) {
            ([], _) => Ok(()),
            ([t], Some(v)) => {
                self.g.op(match t {
                    ValType::I32 => I::I32Const(v as i32),
                    ValType::I64 => I::I64Const(v),
                    ValType::F32 => I::F32Const((v as f32).into()),
                    _ => I::F64Const((v as f64).into()),
                });
                Ok(())
            }
            ([_], None) => Err(err(format!(
                "{} returns a value; give the suppression one",
                c.import
            ))),
            _ => Err(err(format!(
                "{} returns several values; irm cannot suppress it",
                c.import
            ))),
        }
    }

    /// Calls the event's hook (host hooks only). `code`: a constant, or `viol` when None
    /// for DENY; `extra`: a local holding the i64 extra argument, or 0.
    fn hook(&mut self, kind: i32, code: Option<u32>, extra: Option<u32>) {
        let Some(&hook) = self.plan.hook_of_event.get(&self.event) else {
            return;
        };
        self.g.op(I::I32Const(kind));
        match code {
            Some(c) => self.g.op(I::I32Const(c as i32)),
            None if kind == hook_kind::DENY => self.g.op(I::LocalGet(self.viol)),
            None => self.g.op(I::I32Const(0)),
        }
        if self.plan.hook_strings {
            self.hook_words();
        } else {
            for (i, t) in self.params.clone().iter().enumerate() {
                self.g.op(I::LocalGet(i as u32));
                match t {
                    ValType::I32 => self.g.op(I::I64ExtendI32S),
                    ValType::F32 => {
                        self.g.op(I::I32ReinterpretF32);
                        self.g.op(I::I64ExtendI32U);
                    }
                    ValType::F64 => self.g.op(I::I64ReinterpretF64),
                    _ => {}
                }
            }
        }
        match extra {
            Some(l) => self.g.op(I::LocalGet(l)),
            None => self.g.op(I::I64Const(0)),
        }
        if self.plan.hook_strings {
            self.hook_strings();
        }
        self.g.op(I::Call(hook));
    }

    /// For a call that answers behind `retptr` and hands out handles (a stream grant,
    /// `open-at`, `get-directories`), when its event has a hook: a local holding the
    /// first handle it handed out, or -1 when it handed out none (an error, an empty
    /// list), so a recorded run says what the host returned.
    fn first_handle_handed(&mut self) -> Option<u32> {
        self.plan.hook_of_event.get(&self.event)?;
        let ev = self.ev();
        let grant = handles::grants(ev).iter().find_map(|g| match g.at {
            Place::Ok(off) => Some(off),
            Place::Result => None,
        });
        let effect = Effect::of_import(&ev.module, &ev.field);
        let at = match (grant, effect) {
            (Some(off), _) => Some(off),
            (None, Some(Effect::OpenAt)) => Some(4),
            (None, Some(Effect::Preopens)) => None,
            _ => return None,
        };
        let retptr = self.local_of(self.param_named("retptr")?);
        let host = self.plan.host_memory?;
        let out = self.g.local(ValType::I64);
        match at {
            // `result<..., error-code>`: the handle when the discriminant is `ok`.
            Some(off) => {
                self.g.op(I::LocalGet(retptr));
                self.g.op(I::I32Load(mem(host, off.into(), 2)));
                self.g.op(I::I64ExtendI32U);
                self.g.op(I::I64Const(-1));
                self.g.op(I::LocalGet(retptr));
                self.g.op(I::I32Load8U(mem(host, 0, 0)));
                self.g.op(I::I32Eqz);
                self.g.op(I::Select);
            }
            // A list: its first element's handle, when it has one.
            None => {
                self.g.op(I::LocalGet(retptr));
                self.g.op(I::I32Load(mem(host, 4, 2)));
                self.g.op(I::If(BlockType::Result(ValType::I64)));
                self.g.op(I::LocalGet(retptr));
                self.g.op(I::I32Load(mem(host, 0, 2)));
                self.g.op(I::I32Load(mem(host, 0, 2)));
                self.g.op(I::I64ExtendI32U);
                self.g.op(I::Else);
                self.g.op(I::I64Const(-1));
                self.g.op(I::End);
            }
        }
        self.g.op(I::LocalSet(out));
        Some(out)
    }

    /// Pushes the parameters packed into i64 words, as [`crate::manifest::packed_slots`]
    /// lays them out (a component's hooks).
    fn hook_words(&mut self) {
        let ev = &self.program.events[self.event as usize];
        let (slots, _) = crate::manifest::packed_slots(&ev.wasm_params());
        for (i, (t, (_, half))) in self.params.clone().iter().zip(slots).enumerate() {
            self.g.op(I::LocalGet(i as u32));
            match t {
                ValType::I32 => self.g.op(I::I64ExtendI32U),
                ValType::F32 => {
                    self.g.op(I::I32ReinterpretF32);
                    self.g.op(I::I64ExtendI32U);
                }
                ValType::F64 => self.g.op(I::I64ReinterpretF64),
                _ => {}
            }
            if half == Some(true) {
                self.g.op(I::I64Const(32));
                self.g.op(I::I64Shl);
                self.g.op(I::I64Or);
            }
        }
    }

    /// Pushes `(ptr, len)` of every string parameter, or `(0, 0)` when the string does
    /// not lie inside the host memory: the component's host lifts it as a `list<u8>`,
    /// which traps out of bounds.
    fn hook_strings(&mut self) {
        let ev = &self.program.events[self.event as usize];
        let strings: Vec<u32> = (0..ev.params.len() as ParamId)
            .filter(|&p| ev.params[p as usize].ty == ParamType::Str)
            .map(|p| ev.wasm_param_index(p))
            .collect();
        for at in strings {
            let Some(host) = self.plan.host_memory else {
                self.g.op(I::I32Const(0));
                self.g.op(I::I32Const(0));
                continue;
            };
            let inside = self.g.local(ValType::I32);
            // ptr + len <= memory size, computed in 64 bits so it cannot wrap.
            self.g.op(I::LocalGet(at));
            self.g.op(I::I64ExtendI32U);
            self.g.op(I::LocalGet(at + 1));
            self.g.op(I::I64ExtendI32U);
            self.g.op(I::I64Add);
            self.g.op(I::MemorySize(host));
            self.g.op(I::I64ExtendI32U);
            self.g.op(I::I64Const(16));
            self.g.op(I::I64Shl);
            self.g.op(I::I64LeU);
            self.g.op(I::LocalSet(inside));
            for k in [at, at + 1] {
                self.g.op(I::LocalGet(k));
                self.g.op(I::I32Const(0));
                self.g.op(I::LocalGet(inside));
                self.g.op(I::Select);
            }
        }
    }

    /// Commits the steps' new states and variables.
    fn commit(&mut self, steps: &[StepOut]) {
        for s in steps {
            if let Some((global, local)) = s.state {
                self.g.op(I::LocalGet(local));
                self.g.op(I::GlobalSet(global));
            }
            for &(global, local) in &s.vars {
                self.g.op(I::LocalGet(local));
                self.g.op(I::GlobalSet(global));
            }
        }
    }

    /// Reports the audits that fired in `steps`: the hook, and the line through
    /// `fd_write`, which must be delivered in full unless the policy opted out.
    fn audits(&mut self, steps: &[StepOut]) {
        for s in steps {
            let Some(v) = s.verdict else { continue };
            let checked = !self.program.policies[s.policy].allow_undelivered_audits;
            for (code, ti, verdict) in s.outcomes.clone() {
                if verdict != Verdict::Audit {
                    continue;
                }
                self.g.op(I::LocalGet(v));
                self.g.op(I::I32Const(code as i32));
                self.g.op(I::I32Eq);
                self.g.if_(BlockType::Empty);
                self.hook(hook_kind::AUDIT, Some(code), self.result64);
                if self.plan.fd_write.is_some() {
                    let undelivered = checked.then(|| {
                        self.reg.code(
                            self.program,
                            self.event,
                            s.policy,
                            Some(ti),
                            Some(RuntimeFault::AuditUndelivered),
                        )
                    });
                    self.write_message(code, true, undelivered);
                }
                self.g.end();
            }
        }
    }

    /// Writes code's message to fd 2 through the module's own `fd_write`, using a scratch
    /// area at the top of host memory. Audits continue running, so they first save that
    /// area into the private memory and restore it afterwards. With `undelivered`, a
    /// line not written in full (after retrying short writes) denies with that code.
    fn write_message(&mut self, code: u32, save: bool, undelivered: Option<u32>) {
        let Some(fd_write) = self.plan.fd_write else {
            return;
        };
        let host = self.plan.host_memory.unwrap_or(0);
        let (off, len) = self.reg.message_at[code as usize - 1];
        self.reg.uses_messages = true;
        let scratch = scratch_len(len as usize);
        let top = self.g.local(ValType::I64);
        let base = self.g.local(ValType::I32);
        let left = self.g.local(ValType::I32);
        let ok = self.g.local(ValType::I32);
        self.g.op(I::I32Const(0));
        self.g.op(I::LocalSet(ok));
        self.g.op(I::MemorySize(host));
        self.g.op(I::I64ExtendI32U);
        self.g.op(I::I64Const(16));
        self.g.op(I::I64Shl);
        self.g.op(I::I64Const(scratch as i64));
        self.g.op(I::I64Sub);
        self.g.op(I::LocalTee(top));
        self.g.op(I::I64Const(0));
        self.g.op(I::I64GeS);
        self.g.if_(BlockType::Empty);
        self.g.op(I::LocalGet(top));
        self.g.op(I::I32WrapI64);
        self.g.op(I::LocalSet(base));
        let private = self.plan.private_memory;
        if save {
            self.g.op(I::I32Const(0));
            self.g.op(I::LocalGet(base));
            self.g.op(I::I32Const(scratch as i32));
            self.g.op(I::MemoryCopy {
                src_mem: host,
                dst_mem: private,
            });
        }
        // iovec { base + 12, len }; the text at base + 12.
        self.g.op(I::LocalGet(base));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Const(12));
        self.g.op(I::I32Add);
        self.g.op(I::I32Store(mem(host, 0, 2)));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Const(len as i32));
        self.g.op(I::I32Store(mem(host, 4, 2)));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Const(12));
        self.g.op(I::I32Add);
        self.g.op(I::I32Const(off as i32));
        self.g.op(I::I32Const(len as i32));
        self.g.op(I::MemoryInit {
            mem: host,
            data_index: self.plan.message_segment,
        });
        // Write until every byte is out; a failed or empty write ends it.
        self.g.op(I::I32Const(len as i32));
        self.g.op(I::LocalSet(left));
        let done = self.g.block();
        let again = self.g.loop_();
        self.g.op(I::I32Const(2));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Const(1));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Const(8));
        self.g.op(I::I32Add);
        self.g.op(I::Call(fd_write));
        self.g.br_if(done);
        // nwritten in 1..=left: advance the iovec.
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Load(mem(host, 8, 2)));
        self.g.op(I::I32Eqz);
        self.g.br_if(done);
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Load(mem(host, 8, 2)));
        self.g.op(I::LocalGet(left));
        self.g.op(I::I32GtU);
        self.g.br_if(done);
        self.g.op(I::LocalGet(left));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Load(mem(host, 8, 2)));
        self.g.op(I::I32Sub);
        self.g.op(I::LocalTee(left));
        self.g.op(I::I32Eqz);
        self.g.if_(BlockType::Empty);
        self.g.op(I::I32Const(1));
        self.g.op(I::LocalSet(ok));
        self.g.br(done);
        self.g.end();
        self.g.op(I::LocalGet(base));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Load(mem(host, 0, 2)));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Load(mem(host, 8, 2)));
        self.g.op(I::I32Add);
        self.g.op(I::I32Store(mem(host, 0, 2)));
        self.g.op(I::LocalGet(base));
        self.g.op(I::LocalGet(left));
        self.g.op(I::I32Store(mem(host, 4, 2)));
        self.g.br(again);
        self.g.end();
        self.g.end();
        if save {
            self.g.op(I::LocalGet(base));
            self.g.op(I::I32Const(0));
            self.g.op(I::I32Const(scratch as i32));
            self.g.op(I::MemoryCopy {
                src_mem: private,
                dst_mem: host,
            });
        }
        self.g.end();
        if let Some(c) = undelivered {
            self.g.op(I::LocalGet(ok));
            self.g.op(I::I32Eqz);
            self.g.if_(BlockType::Empty);
            self.fail(c);
            self.g.end();
        }
    }

    /// One step of every effective policy in `phase`, in program order.
    fn phase(&mut self, phase: Phase) -> Result<Vec<StepOut>, WeaveError> {
        let mut out = Vec::new();
        for (pi, p) in self.program.policies.iter().enumerate() {
            if !self.plan.effective[pi] {
                continue;
            }
            let cands: Vec<usize> = (0..p.transitions.len())
                .filter(|&ti| {
                    p.transitions[ti].event == self.event && p.transitions[ti].phase == phase
                })
                .collect();
            if cands.is_empty() {
                continue;
            }
            self.policy = pi;
            let state_global =
                self.plan.globals.states[pi].expect("effective policies have a state global");
            let st = self.g.local(ValType::I32);
            self.g.op(I::GlobalGet(state_global));
            self.g.op(I::LocalSet(st));
            let mut var_tmp: HashMap<u32, u32> = HashMap::new();
            let mut vars = Vec::new();
            for &ti in &cands {
                for u in &p.transitions[ti].updates {
                    if let std::collections::hash_map::Entry::Vacant(e) = var_tmp.entry(u.var) {
                        let l = self.g.local(ValType::I64);
                        let global = self.plan.globals.vars[pi][u.var as usize];
                        self.g.op(I::GlobalGet(global));
                        self.g.op(I::LocalSet(l));
                        e.insert(l);
                        vars.push((global, l));
                    }
                }
            }
            let needs_verdict = cands.iter().any(|&ti| {
                matches!(
                    p.transitions[ti].verdict,
                    Verdict::Audit | Verdict::Suppress(_)
                )
            });
            let verdict = needs_verdict.then(|| self.g.local(ValType::I32));
            if let Some(v) = verdict {
                self.g.op(I::I32Const(0));
                self.g.op(I::LocalSet(v));
            }
            let mut outcomes = Vec::new();
            let mut changes_state = false;
            let done = self.g.block();
            for &ti in &cands {
                let t = &p.transitions[ti];
                self.ti = ti;
                if phase == Phase::Post && matches!(t.verdict, Verdict::Suppress(_)) {
                    return Err(WeaveError::UnsupportedProgram {
                        policy: p.name.clone(),
                        origin: t.origin.clone(),
                        message: "a transition after the call cannot suppress it".into(),
                    });
                }
                let skip = self.g.block();
                let all_states = (0..p.states.len() as u32).all(|s| t.from.contains(&s));
                if !all_states {
                    for (k, &s) in t.from.iter().enumerate() {
                        self.g.op(I::LocalGet(st));
                        self.g.op(I::I32Const(s as i32));
                        self.g.op(I::I32Eq);
                        if k > 0 {
                            self.g.op(I::I32Or);
                        }
                    }
                    self.g.op(I::I32Eqz);
                    self.g.br_if(skip);
                }
                if t.guard != Expr::Bool(true) {
                    self.bool_expr(&t.guard)?;
                    self.g.op(I::I32Eqz);
                    self.g.br_if(skip);
                }
                // Fires. Update values read the globals (values before the step).
                if t.verdict != Verdict::Deny {
                    for u in &t.updates {
                        self.int_expr(&u.value)?;
                        let l = var_tmp[&u.var];
                        self.g.op(I::LocalSet(l));
                        let v = &p.vars[u.var as usize];
                        if v.min != i64::MIN || v.max != i64::MAX {
                            let code = self.reg.code(
                                self.program,
                                self.event,
                                pi,
                                Some(ti),
                                Some(RuntimeFault::VarOutOfRange {
                                    var: u.var,
                                    value: 0,
                                }),
                            );
                            self.g.op(I::LocalGet(l));
                            self.g.op(I::I64Const(v.min));
                            self.g.op(I::I64LtS);
                            self.g.op(I::LocalGet(l));
                            self.g.op(I::I64Const(v.max));
                            self.g.op(I::I64GtS);
                            self.g.op(I::I32Or);
                            self.g.if_(BlockType::Empty);
                            self.g.op(I::LocalGet(l));
                            self.g.op(I::LocalSet(self.extra));
                            self.fail(code);
                            self.g.end();
                        }
                    }
                    self.set_updates(pi, ti)?;
                }
                match &t.verdict {
                    Verdict::Deny => {
                        let code = self.reg.code(self.program, self.event, pi, Some(ti), None);
                        self.fail(code);
                    }
                    Verdict::Allow => {}
                    v @ (Verdict::Audit | Verdict::Suppress(_)) => {
                        let code = self.reg.code(self.program, self.event, pi, Some(ti), None);
                        self.g.op(I::I32Const(code as i32));
                        self.g
                            .op(I::LocalSet(verdict.expect("allocated for audit/suppress")));
                        outcomes.push((code, ti, v.clone()));
                    }
                }
                if t.verdict != Verdict::Deny {
                    if let Some(next) = t.next {
                        changes_state = true;
                        self.g.op(I::I32Const(next as i32));
                        self.g.op(I::LocalSet(st));
                    }
                    self.g.br(done);
                }
                self.g.end();
            }
            self.g.end();
            out.push(StepOut {
                policy: pi,
                verdict,
                outcomes,
                state: changes_state.then_some((state_global, st)),
                vars,
            });
        }
        Ok(out)
    }

    /// The firing transition's set insertions and removals: values first (against the
    /// sets before the step), then applied in order; a full set is a fault.
    fn set_updates(&mut self, pi: usize, ti: usize) -> Result<(), WeaveError> {
        let t = &self.program.policies[pi].transitions[ti];
        if t.set_updates.is_empty() {
            return Ok(());
        }
        let values: Vec<u32> = t
            .set_updates
            .iter()
            .map(|_| self.g.local(ValType::I64))
            .collect();
        for (u, &l) in t.set_updates.iter().zip(&values) {
            self.int_expr(&u.value)?;
            self.g.op(I::LocalSet(l));
        }
        let (Some(insert), Some(remove)) =
            (self.plan.helpers.set_insert, self.plan.helpers.set_remove)
        else {
            return Err(WeaveError::Internal {
                message: "set updates without set helpers".into(),
            });
        };
        for (u, &l) in t.set_updates.iter().zip(&values) {
            let base = self.plan.sets[pi][u.set as usize];
            let cap = self.program.policies[pi].sets[u.set as usize].capacity;
            self.g.op(I::I32Const(base as i32));
            if u.insert {
                self.g.op(I::I32Const(cap as i32));
                self.g.op(I::LocalGet(l));
                self.g.op(I::Call(insert));
                self.g.if_(BlockType::Empty);
                let code = self.reg.code(
                    self.program,
                    self.event,
                    pi,
                    Some(ti),
                    Some(RuntimeFault::SetFull { set: u.set }),
                );
                self.fail(code);
                self.g.end();
            } else {
                self.g.op(I::LocalGet(l));
                self.g.op(I::Call(remove));
            }
        }
        Ok(())
    }

    /// viol := code; br $deny.
    fn fail(&mut self, code: u32) {
        if !self.deny_codes.contains(&code) {
            self.deny_codes.push(code);
        }
        self.g.op(I::I32Const(code as i32));
        self.g.op(I::LocalSet(self.viol));
        self.g.br(self.deny);
    }

    /// A fault of the call itself (no transition raised it), reported by the event's owner.
    fn call_fault(&mut self, f: RuntimeFault) {
        let owner = self.program.owner(self.event);
        let code = self
            .reg
            .code(self.program, self.event, owner, None, Some(f));
        self.fail(code);
    }

    fn fault(&mut self, f: RuntimeFault) {
        let code = self.reg.code(
            self.program,
            self.event,
            self.policy,
            Some(self.ti),
            Some(f),
        );
        self.fail(code);
    }

    /// Pushes an i32 that is 0 or 1.
    fn bool_expr(&mut self, e: &Expr) -> Result<(), WeaveError> {
        match e {
            Expr::Bool(b) => self.g.op(I::I32Const(*b as i32)),
            Expr::Unary(UnOp::Not, a) => {
                self.bool_expr(a)?;
                self.g.op(I::I32Eqz);
            }
            Expr::Binary(BinOp::And, a, b) => {
                self.bool_expr(a)?;
                self.g.if_(BlockType::Result(ValType::I32));
                self.bool_expr(b)?;
                self.g.op(I::Else);
                self.g.op(I::I32Const(0));
                self.g.end();
            }
            Expr::Binary(BinOp::Or, a, b) => {
                self.bool_expr(a)?;
                self.g.if_(BlockType::Result(ValType::I32));
                self.g.op(I::I32Const(1));
                self.g.op(I::Else);
                self.bool_expr(b)?;
                self.g.end();
            }
            Expr::Binary(op @ (BinOp::Eq | BinOp::Ne), a, b) if a.is_bool() => {
                self.bool_expr(a)?;
                self.bool_expr(b)?;
                self.g
                    .op(if *op == BinOp::Eq { I::I32Eq } else { I::I32Ne });
            }
            Expr::Binary(op, a, b) if op.is_comparison() => {
                self.int_expr(a)?;
                self.int_expr(b)?;
                self.g.op(match op {
                    BinOp::Eq => I::I64Eq,
                    BinOp::Ne => I::I64Ne,
                    BinOp::Lt => I::I64LtS,
                    BinOp::Le => I::I64LeS,
                    BinOp::Gt => I::I64GtS,
                    _ => I::I64GeS,
                });
            }
            Expr::Str(subject, pattern) => self.string_test(*subject, pattern)?,
            Expr::FdIs(p, mask) => {
                // (mask >> kind) & 1
                self.g.op(I::I32Const(*mask as i32));
                self.param_kind(*p);
                self.g.op(I::I32ShrU);
                self.g.op(I::I32Const(1));
                self.g.op(I::I32And);
            }
            Expr::FdWritable(p) => {
                let fd = self.local_of(*p);
                match self.table() {
                    Some(layout) => {
                        self.g.op(I::LocalGet(fd));
                        self.g.op(I::I32Const(MAX_FDS as i32));
                        self.g.op(I::I32LtU);
                        self.g.op(I::If(BlockType::Result(ValType::I32)));
                        self.entry_addr(fd, layout);
                        self.g.op(I::I32Load8U(mem(self.plan.private_memory, 1, 0)));
                        self.g.op(I::Else);
                        self.g.op(I::I32Const(0));
                        self.g.op(I::End);
                    }
                    None => self.g.op(I::I32Const(0)),
                }
            }
            Expr::SetHas(set, v) => {
                let base = self.plan.sets[self.policy][*set as usize];
                self.g.op(I::I32Const(base as i32));
                self.int_expr(v)?;
                self.g.op(I::Call(self.plan.helpers.set_has.ok_or_else(|| {
                    WeaveError::Internal {
                        message: "a set test without set helpers".into(),
                    }
                })?));
            }
            // Integers used as conditions: non-zero is true (the compiler's types rule
            // this out; kept total so no program makes the weaver panic).
            other => {
                self.int_expr(other)?;
                self.g.op(I::I64Const(0));
                self.g.op(I::I64Ne);
            }
        }
        Ok(())
    }

    fn string_test(&mut self, subject: Subject, pattern: &Pattern) -> Result<(), WeaveError> {
        let policy = &self.program.policies[self.policy];
        let origin = policy.transitions[self.ti].origin.clone();
        let name = policy.name.clone();
        let dfa = self.reg.dfa(pattern, &name, &origin)?;
        let internal = |what: &str| WeaveError::Internal {
            message: format!("a {what} string test without its helper"),
        };
        match subject {
            Subject::Raw(param) => {
                let host = self.plan.host_memory.unwrap_or(0);
                let p = self.local_of(param);
                self.in_bounds(p, p + 1, host);
                self.g.op(I::I32Eqz);
                self.g.if_(BlockType::Empty);
                self.fault(RuntimeFault::StringOutOfBounds { param });
                self.g.end();
                self.g.op(I::I32Const(dfa as i32));
                self.g.op(I::LocalGet(p));
                self.g.op(I::LocalGet(p + 1));
                self.g.op(I::Call(
                    self.plan.helpers.matcher.ok_or_else(|| internal("raw"))?,
                ));
            }
            Subject::Resolved(param) => {
                let r = *self
                    .resolved
                    .get(&param)
                    .ok_or_else(|| internal("resolved"))?;
                self.g.op(I::LocalGet(r.status));
                self.g.op(I::I32Const(0));
                self.g.op(I::I32LeS);
                self.g.if_(BlockType::Empty);
                self.g.op(I::LocalGet(r.status));
                self.g.op(I::I32Const(OUT_OF_BOUNDS));
                self.g.op(I::I32Eq);
                self.g.if_(BlockType::Empty);
                self.fault(RuntimeFault::StringOutOfBounds { param });
                self.g.end();
                self.g.op(I::LocalGet(r.status));
                self.g.op(I::I32Const(UNRESOLVED));
                self.g.op(I::I32Eq);
                self.g.if_(BlockType::Empty);
                let dir = self.local_of(r.dir);
                self.g.op(I::LocalGet(dir));
                self.g.op(I::I64ExtendI32S);
                self.g.op(I::LocalSet(self.extra));
                self.fault(RuntimeFault::UnresolvedPath { param, fd: 0 });
                self.g.end();
                self.fault(RuntimeFault::PathTooLong { param });
                self.g.end();
                self.g.op(I::I32Const(dfa as i32));
                self.g.op(I::I32Const(r.buffer as i32));
                self.g.op(I::LocalGet(r.status));
                self.g.op(I::Call(
                    self.plan
                        .helpers
                        .private_matcher
                        .ok_or_else(|| internal("resolved"))?,
                ));
            }
            Subject::FdPath(param) => {
                let layout = self.table().ok_or_else(|| internal("descriptor"))?;
                let matcher = self
                    .plan
                    .helpers
                    .private_matcher
                    .ok_or_else(|| internal("descriptor"))?;
                let fd = self.local_of(param);
                let kind = self.g.local(ValType::I32);
                let len = self.g.local(ValType::I32);
                self.kind_of(fd, Some(layout));
                self.g.op(I::LocalTee(kind));
                // Streams and sockets have the empty path.
                self.g.op(I::I32Const(Kind::Socket as i32));
                self.g.op(I::I32Eq);
                self.g.op(I::LocalGet(kind));
                self.g.op(I::I32Const(Kind::Stdin as i32));
                self.g.op(I::I32Sub);
                self.g.op(I::I32Const(3));
                self.g.op(I::I32LtU);
                self.g.op(I::I32Or);
                self.g.op(I::If(BlockType::Result(ValType::I32)));
                self.g.op(I::I32Const(dfa as i32));
                self.g.op(I::I32Const(0));
                self.g.op(I::I32Const(0));
                self.g.op(I::Call(matcher));
                self.g.op(I::Else);
                // Closed, or a file or directory whose path is unknown: a fault.
                self.g.op(I::I32Const(0));
                self.g.op(I::LocalSet(len));
                self.g.op(I::LocalGet(kind));
                self.g.if_(BlockType::Empty);
                self.entry_addr(fd, layout);
                self.g.op(I::I32Load(mem(self.plan.private_memory, 4, 2)));
                self.g.op(I::LocalSet(len));
                self.g.end();
                self.g.op(I::LocalGet(len));
                self.g.op(I::I32Eqz);
                self.g.if_(BlockType::Empty);
                self.g.op(I::LocalGet(fd));
                self.g.op(I::I64ExtendI32S);
                self.g.op(I::LocalSet(self.extra));
                self.fault(RuntimeFault::UnknownDescriptor { param, fd: 0 });
                self.g.end();
                self.g.op(I::I32Const(dfa as i32));
                self.g.op(I::LocalGet(fd));
                self.g.op(I::I32Const(MAX_PATH as i32));
                self.g.op(I::I32Mul);
                self.g.op(I::I32Const(layout.paths() as i32));
                self.g.op(I::I32Add);
                self.g.op(I::LocalGet(len));
                self.g.op(I::Call(matcher));
                self.g.op(I::End);
            }
        }
        Ok(())
    }

    /// Pushes an i64.
    fn int_expr(&mut self, e: &Expr) -> Result<(), WeaveError> {
        match e {
            Expr::Int(n) => self.g.op(I::I64Const(*n)),
            Expr::Param(id) => {
                let i = self.local_of(*id);
                self.g.op(I::LocalGet(i));
                if self.params[i as usize] == ValType::I32 {
                    self.g.op(I::I64ExtendI32S);
                }
            }
            Expr::Result => match self.result64 {
                Some(r) => self.g.op(I::LocalGet(r)),
                None => {
                    return Err(WeaveError::BadProgram {
                        message: "`result` read where the call has no integer result".into(),
                    })
                }
            },
            Expr::Var(v) => self.g.op(I::GlobalGet(
                self.plan.globals.vars[self.policy][*v as usize],
            )),
            Expr::SetLen(set) => {
                let base = self.plan.sets[self.policy][*set as usize];
                self.g.op(I::I32Const(base as i32));
                self.g.op(I::I32Load(mem(self.plan.private_memory, 0, 2)));
                self.g.op(I::I64ExtendI32U);
            }
            Expr::Unary(UnOp::Neg, a) => {
                self.g.op(I::I64Const(0));
                self.int_expr(a)?;
                self.g.op(I::I64Sub);
            }
            Expr::Unary(UnOp::BitNot, a) => {
                self.int_expr(a)?;
                self.g.op(I::I64Const(-1));
                self.g.op(I::I64Xor);
            }
            Expr::Binary(op @ (BinOp::Div | BinOp::Rem), a, b) => {
                let (la, lb) = (self.g.local(ValType::I64), self.g.local(ValType::I64));
                self.int_expr(a)?;
                self.g.op(I::LocalSet(la));
                self.int_expr(b)?;
                self.g.op(I::LocalTee(lb));
                self.g.op(I::I64Eqz);
                self.g.if_(BlockType::Empty);
                self.fault(RuntimeFault::DivisionByZero);
                self.g.end();
                if *op == BinOp::Rem {
                    // i64.rem_s does not trap on MIN % -1 (it gives 0, like wrapping_rem).
                    self.g.op(I::LocalGet(la));
                    self.g.op(I::LocalGet(lb));
                    self.g.op(I::I64RemS);
                } else {
                    // i64.div_s traps on MIN / -1; x / -1 is the wrapping negation.
                    self.g.op(I::LocalGet(lb));
                    self.g.op(I::I64Const(-1));
                    self.g.op(I::I64Eq);
                    self.g.if_(BlockType::Result(ValType::I64));
                    self.g.op(I::I64Const(0));
                    self.g.op(I::LocalGet(la));
                    self.g.op(I::I64Sub);
                    self.g.op(I::Else);
                    self.g.op(I::LocalGet(la));
                    self.g.op(I::LocalGet(lb));
                    self.g.op(I::I64DivS);
                    self.g.end();
                }
            }
            Expr::Binary(op, a, b) if !e.is_bool() => {
                self.int_expr(a)?;
                self.int_expr(b)?;
                self.g.op(match op {
                    BinOp::Add => I::I64Add,
                    BinOp::Sub => I::I64Sub,
                    BinOp::Mul => I::I64Mul,
                    BinOp::BitAnd => I::I64And,
                    BinOp::BitOr => I::I64Or,
                    BinOp::BitXor => I::I64Xor,
                    BinOp::Shl => I::I64Shl,
                    _ => I::I64ShrS,
                });
            }
            // A boolean where an integer is expected: 0 or 1 (total, see bool_expr).
            other => {
                self.bool_expr(other)?;
                self.g.op(I::I64ExtendI32U);
            }
        }
        Ok(())
    }
}

/// The directory a path is resolved against.
#[derive(Clone, Copy)]
enum Base {
    /// The argument is absolute.
    Root,
    /// The path of the descriptor in this local.
    Descriptor(u32, Layout),
    /// The directory of a resolved link.
    ParentOf(Resolution),
}

use policy_lang::descriptors::{WRITE_OFLAGS, WRITE_RIGHTS};
const _: () = assert!(KIND_FILE == Kind::File as i32 && KIND_SOCKET == Kind::Socket as i32);

/// `acc | ((local & mask) != 0)` on the stack (`acc` already there), when the parameter
/// `local` exists: one flag group of a call that may write.
fn or_any_bits(g: &mut FnGen, local: Option<u32>, mask: i64) {
    if let Some(l) = local {
        g.op(I::LocalGet(l));
        g.op(I::I32Const(mask as i32));
        g.op(I::I32And);
        g.op(I::I32Const(0));
        g.op(I::I32Ne);
        g.op(I::I32Or);
    }
}
