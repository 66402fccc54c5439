//! Lowering of expressions: name resolution, typing and constant folding of
//! [`ast::Expr`] into typed [`ir::Expr`].
//!
//! Invariants of the output (relied on by the interpreter and the weaver):
//! * a guard is boolean, comparison and arithmetic operands are integers;
//! * `x has F` becomes `(x & F) == F`, `p != "s"` becomes `!(p == "s")`;
//! * every subexpression whose operands are constants is folded (integers wrap like at
//!   run time); a constant division by zero is an error here rather than a fault later.
use crate::ast::{self, BinOp as ABin, ExprKind, Span, StrOp, UnOp as AUn};
use crate::descriptors::Kind;
use crate::diag::{suggest, Diagnostic, Severity, Source};
use crate::handles;
use crate::ir::{self, BinOp, Event, Expr, ParamType, Pattern, Subject, UnOp, ValType};
use crate::wasi::{self, Role};
use std::collections::HashMap;

/// The static type of a lowered expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int,
    /// A bare string parameter; only valid as the subject of a string test.
    Str,
}

impl Ty {
    fn describe(self) -> &'static str {
        match self {
            Ty::Bool => "a condition",
            Ty::Int => "an integer",
            Ty::Str => "a string parameter",
        }
    }
}

/// What names an expression may refer to.
pub struct Scope<'a> {
    /// The event of the transition, when lowering a guard or an update.
    pub event: Option<&'a ir::Event>,
    /// The name the transition used for the event (an alias or set member name).
    pub event_name: &'a str,
    /// When the transition names a set: the set's name.
    pub set_name: Option<&'a str>,
    /// Parameter names of the other events of that set, for a precise message.
    pub set_params: &'a [String],
    /// `Some(true)` in `after` transitions, `Some(false)` in `on` ones.
    pub post: Option<bool>,
    /// The policy's variables (empty in constant contexts).
    pub vars: &'a [ir::Var],
    /// The policy's set variables (empty in constant contexts).
    pub sets: &'a [ir::SetVar],
    /// User constants declared so far.
    pub consts: &'a HashMap<String, i64>,
}

pub struct Lowerer<'a> {
    pub sources: &'a [Source],
    pub errors: Vec<Diagnostic>,
    /// Variables read while lowering (for the unused-variable warning).
    pub vars_read: Vec<ir::VarId>,
}

impl<'a> Lowerer<'a> {
    pub fn new(sources: &'a [Source]) -> Self {
        Lowerer {
            sources,
            errors: Vec::new(),
            vars_read: Vec::new(),
        }
    }

    fn error(&mut self, span: Span, msg: impl Into<String>) -> &mut Diagnostic {
        self.errors
            .push(Diagnostic::at(Severity::Error, self.sources, span, msg));
        self.errors.last_mut().expect("just pushed")
    }

    /// Lowers a constant integer expression (constants and literals only).
    pub fn const_int(&mut self, e: &ast::Expr, scope: &Scope, what: &str) -> Option<i64> {
        let (ir, ty) = self.lower(e, scope)?;
        if ty != Ty::Int {
            self.type_error(e.span, what, Ty::Int, ty);
            return None;
        }
        match ir {
            Expr::Int(v) => Some(v),
            _ => {
                self.error(e.span, format!("{what} must be a constant"))
                    .hint = Some("use literals, `const`s and built-in constants only".into());
                None
            }
        }
    }

    /// Lowers an expression that must have type `want`.
    pub fn typed(&mut self, e: &ast::Expr, scope: &Scope, want: Ty, what: &str) -> Option<Expr> {
        let (ir, ty) = self.lower(e, scope)?;
        if ty != want {
            self.type_error(e.span, what, want, ty);
            return None;
        }
        Some(ir)
    }

    fn type_error(&mut self, span: Span, what: &str, want: Ty, got: Ty) {
        let d = self.error(
            span,
            format!(
                "type mismatch: {what} must be {}, found {}",
                want.describe(),
                got.describe()
            ),
        );
        d.hint = Some(match (want, got) {
            (Ty::Bool, Ty::Int) => "compare the value, e.g. `x != 0`".into(),
            (_, Ty::Str) => {
                "test strings with `==`, `!=`, `startswith` or `glob` and a string literal".into()
            }
            (Ty::Int, Ty::Bool) => "a condition cannot be used as a number".into(),
            _ => "check the operator and its operands".into(),
        });
    }

    /// Lowers and types `e`; `None` after reporting an error.
    pub fn lower(&mut self, e: &ast::Expr, scope: &Scope) -> Option<(Expr, Ty)> {
        match &e.kind {
            ExprKind::Int(v) => Some((Expr::Int(*v), Ty::Int)),
            ExprKind::Name(n) => self.name(n, e.span, scope),
            ExprKind::Unary(op, inner) => {
                let (x, ty) = self.lower(inner, scope)?;
                match op {
                    AUn::Not => {
                        if ty != Ty::Bool {
                            self.type_error(inner.span, "the operand of `!`", Ty::Bool, ty);
                            return None;
                        }
                        Some((fold_not(x), Ty::Bool))
                    }
                    AUn::Neg | AUn::BitNot => {
                        let sym = if *op == AUn::Neg { "-" } else { "~" };
                        if ty != Ty::Int {
                            self.type_error(
                                inner.span,
                                &format!("the operand of `{sym}`"),
                                Ty::Int,
                                ty,
                            );
                            return None;
                        }
                        let uop = if *op == AUn::Neg {
                            UnOp::Neg
                        } else {
                            UnOp::BitNot
                        };
                        Some((
                            match x {
                                Expr::Int(v) => Expr::Int(uop.apply(v)),
                                x => Expr::Unary(uop, Box::new(x)),
                            },
                            Ty::Int,
                        ))
                    }
                }
            }
            ExprKind::Binary(op, l, r) => self.binary(*op, l, r, e.span, scope),
            ExprKind::StrTest(operand, op, lit) => self.str_test(operand, *op, lit, scope),
            ExprKind::Field(name, field) => self.field(name, field, scope),
            ExprKind::Is(name, kind) => {
                let param = self.descriptor_param(name, scope, "`is`", true)?;
                let Some(mask) = Kind::mask_named(&kind.name) else {
                    let names: Vec<&str> = Kind::ALL
                        .iter()
                        .map(|k| k.name())
                        .chain(["stdio"])
                        .collect();
                    let hint = suggest(&kind.name, names.iter().copied());
                    self.error(
                        kind.span,
                        format!("unknown descriptor kind `{}`", kind.name),
                    )
                    .hint = Some(match hint {
                        Some(h) => format!("did you mean `{h}`?"),
                        None => format!("kinds: {}", names.join(", ")),
                    });
                    return None;
                };
                Some((Expr::FdIs(param, mask), Ty::Bool))
            }
            ExprKind::In(value, set) => {
                let id = self.set_var(set, scope)?;
                let v = self.typed(value, scope, Ty::Int, "the value tested with `in`")?;
                Some((Expr::SetHas(id, Box::new(v)), Ty::Bool))
            }
        }
    }

    /// `fd.writable`, `handles.size`.
    fn field(
        &mut self,
        name: &ast::Ident,
        field: &ast::Ident,
        scope: &Scope,
    ) -> Option<(Expr, Ty)> {
        if let Some(i) = scope.sets.iter().position(|s| s.name == name.name) {
            if field.name == "size" {
                return Some((Expr::SetLen(i as u32), Ty::Int));
            }
            self.error(field.span, format!("a set has no field `{}`", field.name))
                .hint = Some(format!("`{}.size` is its number of members", name.name));
            return None;
        }
        match field.name.as_str() {
            "writable" => {
                let p = self.descriptor_param(name, scope, "`.writable`", false)?;
                Some((Expr::FdWritable(p), Ty::Bool))
            }
            "path" => {
                self.descriptor_param(name, scope, "`.path`", false)?;
                self.error(field.span, format!("`{}.path` is a string", name.name))
                    .hint = Some(format!(
                    "test it with `==`, `!=`, `startswith` or `glob`: `{}.path glob \"/data/**\"`",
                    name.name
                ));
                None
            }
            other => {
                self.error(field.span, format!("unknown field `{other}`"))
                    .hint =
                    Some("descriptors have `.path` and `.writable`; sets have `.size`".into());
                None
            }
        }
    }

    /// The parameter `name` when it is a descriptor of a WASI call, or (`streams`) a
    /// stream handle of a component import ([`crate::handles`]).
    fn descriptor_param(
        &mut self,
        name: &ast::Ident,
        scope: &Scope,
        what: &str,
        streams: bool,
    ) -> Option<u32> {
        let is_fd = |ev: &Event, p: &str| {
            wasi::event_role(&ev.module, &ev.field, p) == Some(Role::Descriptor)
                || (streams && handles::stream_param(ev, p).is_some())
        };
        let found = scope.event.and_then(|ev| {
            let i = ev.params.iter().position(|p| p.name == name.name)?;
            Some((i as u32, is_fd(ev, &name.name)))
        });
        match found {
            Some((i, true)) => Some(i),
            _ => {
                let fds: Vec<&str> = scope
                    .event
                    .map(|ev| {
                        ev.params
                            .iter()
                            .filter(|p| is_fd(ev, &p.name))
                            .map(|p| p.name.as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                let kind = if streams {
                    "a descriptor or stream handle parameter"
                } else {
                    "a descriptor parameter"
                };
                let d = self.error(
                    name.span,
                    format!("{what} applies to {kind}; `{}` is not one", name.name),
                );
                d.hint = Some(params_hint("descriptor", scope.event_name, &fds));
                None
            }
        }
    }

    /// The index of set variable `name`.
    fn set_var(&mut self, name: &ast::Ident, scope: &Scope) -> Option<u32> {
        if let Some(i) = scope.sets.iter().position(|s| s.name == name.name) {
            return Some(i as u32);
        }
        let hint = suggest(&name.name, scope.sets.iter().map(|s| s.name.as_str()));
        self.error(name.span, format!("unknown set variable `{}`", name.name))
            .hint = Some(match hint {
            Some(h) => format!("did you mean `{h}`?"),
            None => format!("declare it in the policy: `var {}: set[8];`", name.name),
        });
        None
    }

    fn name(&mut self, n: &str, span: Span, scope: &Scope) -> Option<(Expr, Ty)> {
        if let Some(ev) = scope.event {
            if let Some(i) = ev.params.iter().position(|p| p.name == n) {
                return match ev.params[i].ty {
                    ParamType::I32 | ParamType::I64 => Some((Expr::Param(i as u32), Ty::Int)),
                    ParamType::Str => Some((Expr::Param(i as u32), Ty::Str)),
                    ParamType::F32 | ParamType::F64 => {
                        self.error(
                            span,
                            format!("float parameter `{n}` cannot be used in guards"),
                        )
                        .hint = Some("guards compute on integers only".into());
                        None
                    }
                };
            }
            if n == "result" {
                if scope.post == Some(false) {
                    self.error(span, "`result` is only available in `after` transitions")
                        .hint = Some(format!(
                        "write `after {}` to test the result of the call",
                        scope.event_name
                    ));
                    return None;
                }
                return match ev.results.as_slice() {
                    [ValType::I32] | [ValType::I64] => Some((Expr::Result, Ty::Int)),
                    [] => {
                        self.error(span, format!("event `{}` has no result", scope.event_name))
                            .hint = Some(format!(
                            "`{}` is declared without `-> type`",
                            ev.import_name()
                        ));
                        None
                    }
                    _ => {
                        self.error(
                            span,
                            format!("the result of `{}` is not an integer", scope.event_name),
                        );
                        None
                    }
                };
            }
        }
        if let Some(i) = scope.vars.iter().position(|v| v.name == n) {
            self.vars_read.push(i as u32);
            return Some((Expr::Var(i as u32), Ty::Int));
        }
        if scope.sets.iter().any(|s| s.name == n) {
            self.error(span, format!("`{n}` is a set, not a number"))
                .hint = Some(format!(
                "test membership with `x in {n}`, or count with `{n}.size`"
            ));
            return None;
        }
        if let Some(v) = scope.consts.get(n).copied().or_else(|| wasi::constant(n)) {
            return Some((Expr::Int(v), Ty::Int));
        }
        // Unknown: say what kind of name it most likely was meant to be.
        if let (Some(set), true) = (scope.set_name, scope.set_params.iter().any(|p| p == n)) {
            self.error(span, format!("event `{}` (in set `{set}`) has no parameter `{n}`", scope.event_name))
                .hint = Some(format!("guard only on parameters every member of `{set}` has, or write a transition per event"));
            return None;
        }
        let mut candidates: Vec<&str> = Vec::new();
        if let Some(ev) = scope.event {
            candidates.extend(ev.params.iter().map(|p| p.name.as_str()));
            candidates.push("result");
        }
        candidates.extend(scope.vars.iter().map(|v| v.name.as_str()));
        candidates.extend(scope.consts.keys().map(|k| k.as_str()));
        let builtins: Vec<(String, i64)> = wasi::constants().collect();
        candidates.extend(builtins.iter().map(|(k, _)| k.as_str()));
        let looks_const = n
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        let msg = if looks_const {
            format!("unknown constant `{n}`")
        } else if let Some(ev) = scope.event {
            let _ = ev;
            format!(
                "unknown name `{n}`: not a parameter of `{}`, a variable or a constant",
                scope.event_name
            )
        } else if scope.vars.is_empty() {
            format!("unknown constant `{n}`")
        } else {
            format!("unknown variable `{n}`")
        };
        let hint = suggest(n, candidates.iter().copied()).map(|s| format!("did you mean `{s}`?"));
        let hint = hint.or_else(|| {
            scope.event.filter(|ev| !ev.params.is_empty()).map(|ev| {
                let names: Vec<String> =
                    ev.params.iter().map(|p| format!("`{}`", p.name)).collect();
                format!("parameters of `{}`: {}", scope.event_name, names.join(", "))
            })
        });
        let d = self.error(span, msg);
        d.hint = hint;
        None
    }

    fn binary(
        &mut self,
        op: ABin,
        l: &ast::Expr,
        r: &ast::Expr,
        span: Span,
        scope: &Scope,
    ) -> Option<(Expr, Ty)> {
        let lhs = self.lower(l, scope);
        let rhs = self.lower(r, scope);
        let ((lx, lt), (rx, rt)) = (lhs?, rhs?);
        let sym = op.symbol();
        let (want, out) = match op {
            ABin::Ir(BinOp::Or | BinOp::And) => (Ty::Bool, Ty::Bool),
            ABin::Ir(BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)
            | ABin::Has => (Ty::Int, Ty::Bool),
            ABin::Ir(_) => (Ty::Int, Ty::Int),
        };
        for (ty, side) in [(lt, l), (rt, r)] {
            if ty != want {
                if ty == Ty::Str && want == Ty::Int {
                    let what = if out == Ty::Int {
                        "arithmetic"
                    } else {
                        "comparison"
                    };
                    self.error(
                        side.span,
                        format!("{what} on string parameter: `{sym}` needs integer operands"),
                    )
                    .hint = Some(
                        "test strings with `==`, `!=`, `startswith` or `glob` and a string literal"
                            .into(),
                    );
                } else {
                    self.type_error(side.span, &format!("the operand of `{sym}`"), want, ty);
                }
                return None;
            }
        }
        if matches!(op, ABin::Ir(BinOp::Div | BinOp::Rem)) && rx == Expr::Int(0) {
            self.error(r.span, "division by zero").hint =
                Some("the divisor is the constant 0".into());
            return None;
        }
        let _ = span;
        let ir_op = match op {
            ABin::Ir(op) => op,
            ABin::Has => {
                // `x has F` means all bits of F are set in x: `(x & F) == F`.
                let masked = fold_binary(BinOp::BitAnd, lx, rx.clone());
                return Some((fold_binary(BinOp::Eq, masked, rx), Ty::Bool));
            }
        };
        Some((fold_binary(ir_op, lx, rx), out))
    }

    /// The string an operand of a string test reads.
    fn subject(&mut self, operand: &ast::NameRef, scope: &Scope) -> Option<Subject> {
        let ev = scope.event;
        let role = |name: &str| ev.and_then(|e| wasi::event_role(&e.module, &e.field, name));
        let param = |name: &str| {
            ev.and_then(|e| e.params.iter().position(|p| p.name == name))
                .map(|i| i as u32)
        };
        let n = &operand.name.name;
        if let Some(f) = &operand.field {
            if f.name != "path" {
                self.error(f.span, format!("`{}` is not a string", operand.text()))
                    .hint = Some("descriptors have `.path` (a string) and `.writable`".into());
                return None;
            }
            let p = self.descriptor_param(&operand.name, scope, "`.path`", false)?;
            return Some(Subject::FdPath(p));
        }
        if let Some(p) = param(n) {
            if ev.is_some_and(|e| e.params[p as usize].ty == ParamType::Str) {
                return Some(match role(n) {
                    Some(Role::Path { .. } | Role::LinkTarget { .. }) => Subject::Resolved(p),
                    _ => Subject::Raw(p),
                });
            }
        }
        if let Some(base) = n.strip_prefix("raw_") {
            if let (Some(p), Some(Role::Path { .. } | Role::LinkTarget { .. })) =
                (param(base), role(base))
            {
                return Some(Subject::Raw(p));
            }
        }
        let (_, ty) = self.name(n, operand.name.span, scope)?;
        let d = self.error(
            operand.name.span,
            format!(
                "string test on `{n}`, which is {}, not a string parameter",
                ty.describe()
            ),
        );
        d.hint = Some(match ev {
            Some(ev) => {
                let strs: Vec<&str> = ev
                    .params
                    .iter()
                    .filter(|p| p.ty == ParamType::Str)
                    .map(|p| p.name.as_str())
                    .collect();
                params_hint("string", scope.event_name, &strs)
            }
            None => "string tests apply to string parameters of events".into(),
        });
        None
    }

    fn str_test(
        &mut self,
        operand: &ast::NameRef,
        op: StrOp,
        lit: &ast::StrLit,
        scope: &Scope,
    ) -> Option<(Expr, Ty)> {
        let subject = self.subject(operand, scope)?;
        let pattern = match op {
            StrOp::Eq | StrOp::Ne => Pattern::Exact(lit.value.clone()),
            StrOp::StartsWith => Pattern::Prefix(lit.value.clone()),
            StrOp::Glob => {
                if lit.value.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1 {
                    self.error(
                        lit.span,
                        "invalid glob pattern: it ends with an escaping backslash",
                    )
                    .hint = Some("escape a literal backslash as `\\\\\\\\`, or remove it".into());
                    return None;
                }
                Pattern::Glob(lit.value.clone())
            }
        };
        if pattern.check_dfa_size().is_err() {
            self.error(
                lit.span,
                format!(
                    "pattern too complex: it needs more than {} automaton states",
                    crate::pattern::MAX_DFA_STATES
                ),
            )
            .hint = Some("split it into several simpler patterns joined with `||`".into());
            return None;
        }
        let test = Expr::Str(subject, pattern);
        Some((
            if op == StrOp::Ne {
                Expr::Unary(UnOp::Not, Box::new(test))
            } else {
                test
            },
            Ty::Bool,
        ))
    }
}

/// The hint listing an event's parameters of one `kind` ("string", "descriptor"), or
/// saying it has none.
fn params_hint(kind: &str, event_name: &str, names: &[&str]) -> String {
    if names.is_empty() {
        format!("`{event_name}` has no {kind} parameters")
    } else {
        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        format!("{kind} parameters of `{event_name}`: {}", names.join(", "))
    }
}

fn fold_not(x: Expr) -> Expr {
    match x {
        Expr::Bool(b) => Expr::Bool(!b),
        Expr::Unary(UnOp::Not, inner) => *inner,
        x => Expr::Unary(UnOp::Not, Box::new(x)),
    }
}

/// Builds `l op r`, folding constant operands with the run-time semantics of `ir`
/// ([`BinOp::apply`], the one definition). Division by a constant zero is never folded
/// (callers reject it first).
pub fn fold_binary(op: BinOp, l: Expr, r: Expr) -> Expr {
    use BinOp::*;
    match (op, &l, &r) {
        (And, Expr::Bool(false), _) => Expr::Bool(false),
        (And, Expr::Bool(true), _) => r,
        (And, _, Expr::Bool(true)) => l,
        (Or, Expr::Bool(true), _) => Expr::Bool(true),
        (Or, Expr::Bool(false), _) => r,
        (Or, _, Expr::Bool(false)) => l,
        (And | Or, _, _) => Expr::Binary(op, Box::new(l), Box::new(r)),
        (_, Expr::Int(a), Expr::Int(b)) => match op.apply(*a, *b) {
            Some(v) if op.is_comparison() => Expr::Bool(v != 0),
            Some(v) => Expr::Int(v),
            None => Expr::Binary(op, Box::new(l), Box::new(r)),
        },
        _ => Expr::Binary(op, Box::new(l), Box::new(r)),
    }
}
