//! Code generation: one wrapper per wrapped import declaration, and the string matcher.
//!
//! A wrapper implements one call of the event exactly as `policy_lang::ir` specifies:
//!
//! ```text
//! block $deny
//!   [hook PRE]
//!   for each effective policy with pre transitions on the event, in program order:
//!     first matching transition fires; guards on i64, faults -> viol := code; br $deny
//!     deny -> viol := code; br $deny   (first denying policy wins: later steps are pure)
//!   commit state/var temps; audits in program order; first suppression returns
//!   call the ORIGINAL import; post steps likewise; return the results
//! end
//! [hook DENY | message through fd_write]; irm:violation := viol; unreachable
//! ```
//!
//! Guards read variables from the globals, which are only written at commit time, so
//! updates of one step see the values before the step (simultaneous assignment).
use std::collections::HashMap;

use policy_lang::ir::{BinOp, EventId, Expr, Pattern, Phase, Program, UnOp, Verdict};
use wasm_encoder::{BlockType, Function, Instruction as I, ValType};

use crate::fngen::{mem, FnGen};

use crate::manifest::{hook_kind, Code, CodeKind, Fault};
use crate::plan::{is_bool, to_wasm, Plan, WrapperPlan};
use crate::WeaveError;

/// Everything generated code registers: violation codes, messages and DFA tables.
pub(crate) struct Registry {
    pub codes: Vec<Code>,
    index: HashMap<(usize, usize, Option<Fault>), u32>,
    /// Contents of the passive message segment.
    pub messages: Vec<u8>,
    /// Per code (index code - 1): offset and length of its message.
    message_at: Vec<(u32, u32)>,
    /// Contents of the private memory from `dfa_start` on.
    pub dfa_bytes: Vec<u8>,
    dfas: HashMap<Pattern, u32>,
    /// Where DFA tables start in the private memory; the bytes before are where audits
    /// save memory 0's scratch area.
    pub dfa_start: u32,
    pub uses_messages: bool,
    pub uses_save_area: bool,
}

impl Registry {
    pub fn new(save_len: u32) -> Self {
        Registry {
            codes: Vec::new(),
            index: HashMap::new(),
            messages: Vec::new(),
            message_at: Vec::new(),
            dfa_bytes: Vec::new(),
            dfas: HashMap::new(),
            dfa_start: save_len.next_multiple_of(8),
            uses_messages: false,
            uses_save_area: false,
        }
    }

    pub fn uses_dfas(&self) -> bool {
        !self.dfas.is_empty()
    }

    /// Total bytes of the private memory in use.
    pub fn private_len(&self) -> u64 {
        self.dfa_start as u64 + self.dfa_bytes.len() as u64
    }

    fn code(&mut self, program: &Program, policy: usize, ti: usize, fault: Option<Fault>) -> u32 {
        if let Some(&c) = self.index.get(&(policy, ti, fault.clone())) {
            return c;
        }
        let p = &program.policies[policy];
        let t = &p.transitions[ti];
        let ev = &program.events[t.event as usize];
        let kind = match (&fault, &t.verdict) {
            (Some(_), _) => CodeKind::Fault,
            (None, Verdict::Deny) => CodeKind::Deny,
            (None, Verdict::Audit) => CodeKind::Audit,
            (None, Verdict::Suppress(_)) => CodeKind::Suppress,
            (None, Verdict::Allow) => CodeKind::Audit, // never registered
        };
        let reason = match &fault {
            Some(f) => fault_reason(program, policy, ti, f),
            None => t.reason.clone().unwrap_or_else(|| match kind {
                CodeKind::Deny => format!("denied by the transition at {}", t.origin),
                CodeKind::Audit => format!("audited by the transition at {}", t.origin),
                _ => format!("suppressed by the transition at {}", t.origin),
            }),
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
            phase: t.phase,
            fault: fault.clone(),
            event: t.event,
            import: ev.import_name(),
            reason,
            origin: t.origin.clone(),
        });
        self.index.insert((policy, ti, fault), code);
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

fn fault_reason(program: &Program, policy: usize, ti: usize, f: &Fault) -> String {
    let p = &program.policies[policy];
    let t = &p.transitions[ti];
    let ev = &program.events[t.event as usize];
    match f {
        Fault::StringOutOfBounds { param } => format!(
            "string argument `{}` lies outside memory 0",
            ev.params
                .get(*param as usize)
                .map(|p| p.name.as_str())
                .unwrap_or("?")
        ),
        Fault::DivisionByZero => format!("division by zero in the transition at {}", t.origin),
        Fault::VarOutOfRange { var } => {
            let v = &p.vars[*var as usize];
            format!(
                "variable `{}` would leave its range {}..={} (transition at {})",
                v.name, v.min, v.max, t.origin
            )
        }
    }
}

/// The scratch bytes one message needs at the top of memory 0: iovec, nwritten, text.
pub(crate) fn scratch_len(msg_len: usize) -> u32 {
    (12 + msg_len as u32).next_multiple_of(8)
}

/// The save area audits need: the largest audit scratch area any wrapper can use.
pub(crate) fn audit_save_len(program: &Program, plan: &Plan) -> u32 {
    if plan.fd_write.is_none() {
        return 0;
    }
    let mut max = 0;
    for w in &plan.wrappers {
        for (pi, p) in program.policies.iter().enumerate() {
            if !plan.effective[pi] {
                continue;
            }
            for t in p
                .transitions
                .iter()
                .filter(|t| t.event == w.event && t.verdict == Verdict::Audit)
            {
                let ev = &program.events[w.event as usize];
                let reason = t
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("audited by the transition at {}", t.origin));
                let m = message(CodeKind::Audit, &p.name, &ev.import_name(), &reason);
                max = max.max(scratch_len(m.len()));
            }
        }
    }
    max
}

/// The matcher `(dfa_base, ptr, len) -> accepted` over memory 0, tables in the private
/// memory (layout: accept-table address u32, start state u32, u16 transitions, u8 flags).
pub(crate) fn matcher(private: u32) -> Function {
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
    g.op(I::I32Load8U(mem(0, 0, 0)));
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
    verdict: Option<u32>,
    /// (code, verdict) of the audit and suppress transitions that may have fired.
    outcomes: Vec<(u32, Verdict)>,
    state: Option<(u32, u32)>,
    vars: Vec<(u32, u32)>,
}

struct WrapGen<'a> {
    program: &'a Program,
    plan: &'a Plan,
    reg: &'a mut Registry,
    g: FnGen,
    event: EventId,
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
        params,
        results,
        deny: 0,
        viol,
        extra,
        result64: None,
        deny_codes: Vec::new(),
        policy: 0,
        ti: 0,
    };
    wg.body(w)?;
    Ok(wg.g.finish())
}

impl WrapGen<'_> {
    fn body(&mut self, w: &WrapperPlan) -> Result<(), WeaveError> {
        self.deny = self.g.block();
        self.hook(hook_kind::PRE, None, None);
        let pre = self.phase(Phase::Pre)?;
        self.commit_and_audit(&pre);
        for s in &pre {
            let Some(v) = s.verdict else { continue };
            for (code, verdict) in &s.outcomes {
                let Verdict::Suppress(value) = verdict else {
                    continue;
                };
                self.g.op(I::LocalGet(v));
                self.g.op(I::I32Const(*code as i32));
                self.g.op(I::I32Eq);
                self.g.if_(BlockType::Empty);
                self.hook(hook_kind::SUPPRESS, Some(*code), None);
                self.suppress_value(*value, *code)?;
                self.g.op(I::Return);
                self.g.end();
            }
        }
        let has_post = self.program.policies.iter().enumerate().any(|(pi, p)| {
            self.plan.effective[pi]
                && p.transitions
                    .iter()
                    .any(|t| t.event == self.event && t.phase == Phase::Post)
        });
        for i in 0..self.params.len() as u32 {
            self.g.op(I::LocalGet(i));
        }
        self.g.op(I::Call(w.import));
        if has_post || !self.plan.hooks.is_empty() {
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
            self.hook(hook_kind::POST, None, self.result64);
            let post = self.phase(Phase::Post)?;
            self.commit_and_audit(&post);
            for &l in &rl {
                self.g.op(I::LocalGet(l));
            }
        }
        self.g.op(I::Return);
        self.g.end();

        // The violation path: `viol` holds the code.
        self.hook(hook_kind::DENY, None, Some(self.extra));
        if let Some(fd_write) = self.plan.fd_write {
            let codes = std::mem::take(&mut self.deny_codes);
            for code in codes {
                self.g.op(I::LocalGet(self.viol));
                self.g.op(I::I32Const(code as i32));
                self.g.op(I::I32Eq);
                self.g.if_(BlockType::Empty);
                self.write_message(fd_write, code, false);
                self.g.end();
            }
        }
        self.g.op(I::LocalGet(self.viol));
        self.g.op(I::GlobalSet(self.plan.globals.violation));
        self.g.op(I::Unreachable);
        Ok(())
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
        match extra {
            Some(l) => self.g.op(I::LocalGet(l)),
            None => self.g.op(I::I64Const(0)),
        }
        self.g.op(I::Call(hook));
    }

    fn commit_and_audit(&mut self, steps: &[StepOut]) {
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
        for s in steps {
            let Some(v) = s.verdict else { continue };
            for (code, verdict) in &s.outcomes {
                if *verdict != Verdict::Audit {
                    continue;
                }
                self.g.op(I::LocalGet(v));
                self.g.op(I::I32Const(*code as i32));
                self.g.op(I::I32Eq);
                self.g.if_(BlockType::Empty);
                self.hook(hook_kind::AUDIT, Some(*code), self.result64);
                if let Some(fd_write) = self.plan.fd_write {
                    self.write_message(fd_write, *code, true);
                }
                self.g.end();
            }
        }
    }

    /// Writes code's message to fd 2 through the module's own `fd_write`, using a scratch
    /// area at the top of memory 0. Audits continue running, so they first save that area
    /// into the private memory and restore it afterwards.
    fn write_message(&mut self, fd_write: u32, code: u32, save: bool) {
        let (off, len) = self.reg.message_at[code as usize - 1];
        self.reg.uses_messages = true;
        let scratch = scratch_len(len as usize);
        let top = self.g.local(ValType::I64);
        let base = self.g.local(ValType::I32);
        self.g.op(I::MemorySize(0));
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
            self.reg.uses_save_area = true;
            self.g.op(I::I32Const(0));
            self.g.op(I::LocalGet(base));
            self.g.op(I::I32Const(scratch as i32));
            self.g.op(I::MemoryCopy {
                src_mem: 0,
                dst_mem: private,
            });
        }
        self.g.op(I::LocalGet(base));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Const(12));
        self.g.op(I::I32Add);
        self.g.op(I::I32Store(mem(0, 0, 2)));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Const(len as i32));
        self.g.op(I::I32Store(mem(0, 4, 2)));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Const(12));
        self.g.op(I::I32Add);
        self.g.op(I::I32Const(off as i32));
        self.g.op(I::I32Const(len as i32));
        self.g.op(I::MemoryInit {
            mem: 0,
            data_index: self.plan.message_segment,
        });
        self.g.op(I::I32Const(2));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Const(1));
        self.g.op(I::LocalGet(base));
        self.g.op(I::I32Const(8));
        self.g.op(I::I32Add);
        self.g.op(I::Call(fd_write));
        self.g.op(I::Drop);
        if save {
            self.g.op(I::LocalGet(base));
            self.g.op(I::I32Const(0));
            self.g.op(I::I32Const(scratch as i32));
            self.g.op(I::MemoryCopy {
                src_mem: private,
                dst_mem: 0,
            });
        }
        self.g.end();
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
                for u in &t.updates {
                    self.int_expr(&u.value)?;
                    let l = var_tmp[&u.var];
                    self.g.op(I::LocalSet(l));
                    let v = &p.vars[u.var as usize];
                    if v.min != i64::MIN || v.max != i64::MAX {
                        let code = self.reg.code(
                            self.program,
                            pi,
                            ti,
                            Some(Fault::VarOutOfRange { var: u.var }),
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
                match &t.verdict {
                    Verdict::Deny => {
                        let code = self.reg.code(self.program, pi, ti, None);
                        self.fail(code);
                    }
                    Verdict::Allow => {}
                    v @ (Verdict::Audit | Verdict::Suppress(_)) => {
                        let code = self.reg.code(self.program, pi, ti, None);
                        self.g.op(I::I32Const(code as i32));
                        self.g
                            .op(I::LocalSet(verdict.expect("allocated for audit/suppress")));
                        outcomes.push((code, v.clone()));
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
                verdict,
                outcomes,
                state: changes_state.then_some((state_global, st)),
                vars,
            });
        }
        Ok(out)
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

    fn fault(&mut self, f: Fault) {
        let code = self.reg.code(self.program, self.policy, self.ti, Some(f));
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
            Expr::Binary(op @ (BinOp::Eq | BinOp::Ne), a, b) if is_bool(a) => {
                self.bool_expr(a)?;
                self.bool_expr(b)?;
                self.g
                    .op(if *op == BinOp::Eq { I::I32Eq } else { I::I32Ne });
            }
            Expr::Binary(
                op @ (BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge),
                a,
                b,
            ) => {
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
            Expr::Str(param, pattern) => self.string_test(*param, pattern)?,
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

    fn string_test(&mut self, param: u32, pattern: &Pattern) -> Result<(), WeaveError> {
        let ev = &self.program.events[self.event as usize];
        let p = ev.wasm_param_index(param);
        self.g.op(I::LocalGet(p));
        self.g.op(I::I64ExtendI32U);
        self.g.op(I::LocalGet(p + 1));
        self.g.op(I::I64ExtendI32U);
        self.g.op(I::I64Add);
        self.g.op(I::MemorySize(0));
        self.g.op(I::I64ExtendI32U);
        self.g.op(I::I64Const(16));
        self.g.op(I::I64Shl);
        self.g.op(I::I64GtU);
        self.g.if_(BlockType::Empty);
        self.fault(Fault::StringOutOfBounds { param });
        self.g.end();
        let policy = &self.program.policies[self.policy];
        let origin = &policy.transitions[self.ti].origin;
        let base = self.reg.dfa(pattern, &policy.name, origin)?;
        self.g.op(I::I32Const(base as i32));
        self.g.op(I::LocalGet(p));
        self.g.op(I::LocalGet(p + 1));
        self.g.op(I::Call(self.plan.matcher_index));
        Ok(())
    }

    /// Pushes an i64.
    fn int_expr(&mut self, e: &Expr) -> Result<(), WeaveError> {
        match e {
            Expr::Int(n) => self.g.op(I::I64Const(*n)),
            Expr::Param(id) => {
                let ev = &self.program.events[self.event as usize];
                let i = ev.wasm_param_index(*id);
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
                self.fault(Fault::DivisionByZero);
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
            Expr::Binary(op, a, b) if !is_bool(e) => {
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
