//! Lowering of expressions: name resolution, typing and constant folding of
//! [`ast::Expr`] into typed [`ir::Expr`].
//!
//! Invariants of the output (relied on by the interpreter and the weaver):
//! * a guard is boolean, comparison and arithmetic operands are integers;
//! * `x has F` becomes `(x & F) == F`, `p != "s"` becomes `!(p == "s")`;
//! * every subexpression whose operands are constants is folded (integers wrap like at
//!   run time); a constant division by zero is an error here rather than a fault later.
use crate::ast::{self, BinOp as ABin, ExprKind, Span, StrOp, UnOp as AUn};
use crate::diag::{suggest, Diagnostic, Severity, Source};
use crate::ir::{self, BinOp, Expr, ParamType, Pattern, UnOp, ValType};
use crate::wasi;
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
                                Expr::Int(v) if uop == UnOp::Neg => Expr::Int(v.wrapping_neg()),
                                Expr::Int(v) => Expr::Int(!v),
                                x => Expr::Unary(uop, Box::new(x)),
                            },
                            Ty::Int,
                        ))
                    }
                }
            }
            ExprKind::Binary(op, l, r) => self.binary(*op, l, r, e.span, scope),
            ExprKind::StrTest(param, op, lit) => self.str_test(param, *op, lit, e.span, scope),
        }
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
            ABin::Or | ABin::And => (Ty::Bool, Ty::Bool),
            ABin::Eq | ABin::Ne | ABin::Lt | ABin::Le | ABin::Gt | ABin::Ge | ABin::Has => {
                (Ty::Int, Ty::Bool)
            }
            _ => (Ty::Int, Ty::Int),
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
        if matches!(op, ABin::Div | ABin::Rem) && rx == Expr::Int(0) {
            self.error(r.span, "division by zero").hint =
                Some("the divisor is the constant 0".into());
            return None;
        }
        let _ = span;
        let ir_op = match op {
            ABin::Or => BinOp::Or,
            ABin::And => BinOp::And,
            ABin::Eq => BinOp::Eq,
            ABin::Ne => BinOp::Ne,
            ABin::Lt => BinOp::Lt,
            ABin::Le => BinOp::Le,
            ABin::Gt => BinOp::Gt,
            ABin::Ge => BinOp::Ge,
            ABin::Has => {
                // `x has F` means all bits of F are set in x: `(x & F) == F`.
                let masked = fold_binary(BinOp::BitAnd, lx, rx.clone());
                return Some((fold_binary(BinOp::Eq, masked, rx), Ty::Bool));
            }
            ABin::BitOr => BinOp::BitOr,
            ABin::BitXor => BinOp::BitXor,
            ABin::BitAnd => BinOp::BitAnd,
            ABin::Shl => BinOp::Shl,
            ABin::Shr => BinOp::Shr,
            ABin::Add => BinOp::Add,
            ABin::Sub => BinOp::Sub,
            ABin::Mul => BinOp::Mul,
            ABin::Div => BinOp::Div,
            ABin::Rem => BinOp::Rem,
        };
        Some((fold_binary(ir_op, lx, rx), out))
    }

    fn str_test(
        &mut self,
        param: &ast::Ident,
        op: StrOp,
        lit: &ast::StrLit,
        span: Span,
        scope: &Scope,
    ) -> Option<(Expr, Ty)> {
        let (x, ty) = self.name(&param.name, param.span, scope)?;
        let id = match (x, ty) {
            (Expr::Param(id), Ty::Str) => id,
            (_, ty) => {
                let d = self.error(
                    param.span,
                    format!(
                        "string test on `{}`, which is {}, not a string parameter",
                        param.name,
                        ty.describe()
                    ),
                );
                d.hint = Some(match scope.event {
                    Some(ev) => {
                        let strs: Vec<String> = ev
                            .params
                            .iter()
                            .filter(|p| p.ty == ParamType::Str)
                            .map(|p| format!("`{}`", p.name))
                            .collect();
                        if strs.is_empty() {
                            format!("`{}` has no string parameters", scope.event_name)
                        } else {
                            format!(
                                "string parameters of `{}`: {}",
                                scope.event_name,
                                strs.join(", ")
                            )
                        }
                    }
                    None => "string tests apply to string parameters of events".into(),
                });
                return None;
            }
        };
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
        let test = Expr::Str(id, pattern);
        let _ = span;
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

fn fold_not(x: Expr) -> Expr {
    match x {
        Expr::Bool(b) => Expr::Bool(!b),
        Expr::Unary(UnOp::Not, inner) => *inner,
        x => Expr::Unary(UnOp::Not, Box::new(x)),
    }
}

/// Builds `l op r`, folding constant operands with the run-time semantics of `ir`.
/// Division by a constant zero is never folded (callers reject it first).
pub fn fold_binary(op: BinOp, l: Expr, r: Expr) -> Expr {
    use BinOp::*;
    match (op, &l, &r) {
        (And, Expr::Bool(false), _) => Expr::Bool(false),
        (And, Expr::Bool(true), _) => r,
        (And, _, Expr::Bool(true)) => l,
        (Or, Expr::Bool(true), _) => Expr::Bool(true),
        (Or, Expr::Bool(false), _) => r,
        (Or, _, Expr::Bool(false)) => l,
        (_, Expr::Int(a), Expr::Int(b)) => {
            let (a, b) = (*a, *b);
            match op {
                Add => Expr::Int(a.wrapping_add(b)),
                Sub => Expr::Int(a.wrapping_sub(b)),
                Mul => Expr::Int(a.wrapping_mul(b)),
                Div if b != 0 => Expr::Int(a.wrapping_div(b)),
                Rem if b != 0 => Expr::Int(a.wrapping_rem(b)),
                BitAnd => Expr::Int(a & b),
                BitOr => Expr::Int(a | b),
                BitXor => Expr::Int(a ^ b),
                Shl => Expr::Int(a.wrapping_shl((b & 63) as u32)),
                Shr => Expr::Int(a.wrapping_shr((b & 63) as u32)),
                Eq => Expr::Bool(a == b),
                Ne => Expr::Bool(a != b),
                Lt => Expr::Bool(a < b),
                Le => Expr::Bool(a <= b),
                Gt => Expr::Bool(a > b),
                Ge => Expr::Bool(a >= b),
                _ => Expr::Binary(op, Box::new(l), Box::new(r)),
            }
        }
        _ => Expr::Binary(op, Box::new(l), Box::new(r)),
    }
}
