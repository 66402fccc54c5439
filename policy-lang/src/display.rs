//! Printing the IR back in policy-language syntax, for `irm show`, Graphviz labels and
//! messages. Expressions print with the fewest parentheses that keep their meaning and
//! re-parse to the same IR.
use crate::descriptors::Kind;
use crate::ir::{
    BinOp, Event, Expr, ParamType, Pattern, Phase, Policy, SetUpdate, SetVar, Subject, Transition,
    UnOp, Update, ValType, Var, Verdict,
};
use std::fmt;

/// An expression with the names it needs: the event's parameters and the policy's
/// variables and sets.
pub struct ExprDisplay<'a> {
    pub expr: &'a Expr,
    pub event: Option<&'a Event>,
    pub vars: &'a [Var],
    pub sets: &'a [SetVar],
}

impl Expr {
    /// Displays `self` using the parameter names of `event` and the names of `vars`;
    /// unknown indices print as `$param3` / `$var3`.
    pub fn display<'a>(&'a self, event: Option<&'a Event>, vars: &'a [Var]) -> ExprDisplay<'a> {
        ExprDisplay {
            expr: self,
            event,
            vars,
            sets: &[],
        }
    }

    /// Displays `self` with the names of `policy`'s variables and sets.
    pub fn display_in<'a>(
        &'a self,
        event: Option<&'a Event>,
        policy: &'a Policy,
    ) -> ExprDisplay<'a> {
        ExprDisplay {
            expr: self,
            event,
            vars: &policy.vars,
            sets: &policy.sets,
        }
    }
}

impl BinOp {
    /// The operator as written in source.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }

    /// C-like binding strength; higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::BitOr => 3,
            BinOp::BitXor => 4,
            BinOp::BitAnd => 5,
            BinOp::Eq | BinOp::Ne => 6,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 7,
            BinOp::Shl | BinOp::Shr => 8,
            BinOp::Add | BinOp::Sub => 9,
            BinOp::Mul | BinOp::Div | BinOp::Rem => 10,
        }
    }
}

const UNARY: u8 = 11;
const ATOM: u8 = 12;

/// A string literal in source syntax.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl ExprDisplay<'_> {
    fn param(&self, id: u32) -> String {
        self.event
            .and_then(|e| e.params.get(id as usize))
            .map_or_else(|| format!("$param{id}"), |p| p.name.clone())
    }

    fn set(&self, id: u32) -> String {
        self.sets
            .get(id as usize)
            .map_or_else(|| format!("$set{id}"), |s| s.name.clone())
    }

    /// A string operand: `path` (resolved), `raw_path`, `fd.path`.
    fn subject(&self, s: Subject) -> String {
        match s {
            Subject::Resolved(p) => self.param(p),
            Subject::Raw(p) => {
                let name = self.param(p);
                let is_path = self.event.is_some_and(|e| {
                    e.module == crate::wasi::MODULE
                        && matches!(
                            crate::wasi::role(&e.field, &name),
                            Some(
                                crate::wasi::Role::Path { .. }
                                    | crate::wasi::Role::LinkTarget { .. }
                            )
                        )
                });
                if is_path {
                    format!("raw_{name}")
                } else {
                    name
                }
            }
            Subject::FdPath(p) => format!("{}.path", self.param(p)),
        }
    }

    fn prec(e: &Expr) -> u8 {
        match e {
            Expr::Binary(BinOp::Eq, l, r) if Self::has_form(l, r).is_some() => 7,
            Expr::Binary(op, _, _) => op.precedence(),
            Expr::Unary(UnOp::Not, inner) if matches!(**inner, Expr::Str(_, Pattern::Exact(_))) => {
                6
            }
            Expr::Unary(..) => UNARY,
            Expr::Int(v) if *v < 0 => UNARY,
            Expr::Str(..) | Expr::FdIs(..) | Expr::SetHas(..) => 6,
            _ => ATOM,
        }
    }

    /// `(x & F) == F` is printed as `x has F`.
    fn has_form<'e>(l: &'e Expr, r: &'e Expr) -> Option<(&'e Expr, &'e Expr)> {
        match l {
            Expr::Binary(BinOp::BitAnd, x, f) if **f == *r => Some((x, f)),
            _ => None,
        }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, e: &Expr, min: u8) -> fmt::Result {
        let paren = Self::prec(e) < min;
        if paren {
            f.write_str("(")?;
        }
        match e {
            Expr::Bool(b) => write!(f, "{}", if *b { "1 == 1" } else { "1 == 0" })?,
            Expr::Int(v) => write!(f, "{v}")?,
            Expr::Param(p) => f.write_str(&self.param(*p))?,
            Expr::Result => f.write_str("result")?,
            Expr::Var(v) => match self.vars.get(*v as usize) {
                Some(var) => f.write_str(&var.name)?,
                None => write!(f, "$var{v}")?,
            },
            Expr::Unary(UnOp::Not, inner) => {
                if let Expr::Str(p, Pattern::Exact(s)) = &**inner {
                    write!(f, "{} != {}", self.subject(*p), quote(s))?;
                } else {
                    f.write_str("!")?;
                    self.write(f, inner, UNARY)?;
                }
            }
            Expr::Unary(op, inner) => {
                f.write_str(if *op == UnOp::Neg { "-" } else { "~" })?;
                self.write(f, inner, UNARY)?;
            }
            Expr::Binary(op, l, r) => {
                if let (BinOp::Eq, Some((x, flags))) = (op, Self::has_form(l, r)) {
                    self.write(f, x, 8)?;
                    f.write_str(" has ")?;
                    self.write(f, flags, 8)?;
                } else {
                    let p = op.precedence();
                    self.write(f, l, p)?;
                    write!(f, " {} ", op.symbol())?;
                    self.write(f, r, p + 1)?;
                }
            }
            Expr::Str(p, pat) => {
                let (op, s) = match pat {
                    Pattern::Exact(s) => ("==", s),
                    Pattern::Prefix(s) => ("startswith", s),
                    Pattern::Glob(s) => ("glob", s),
                };
                write!(f, "{} {op} {}", self.subject(*p), quote(s))?;
            }
            Expr::FdIs(p, mask) => {
                let names: Vec<&str> = if *mask == Kind::mask_named("stdio").unwrap_or(0) {
                    vec!["stdio"]
                } else {
                    Kind::ALL
                        .iter()
                        .filter(|k| mask & k.bit() != 0)
                        .map(|k| k.name())
                        .collect()
                };
                let fd = self.param(*p);
                let tests: Vec<String> = names.iter().map(|k| format!("{fd} is {k}")).collect();
                match tests.as_slice() {
                    [one] => f.write_str(one)?,
                    [] => f.write_str("1 == 0")?,
                    many => write!(f, "({})", many.join(" || "))?,
                }
            }
            Expr::FdWritable(p) => write!(f, "{}.writable", self.param(*p))?,
            Expr::SetHas(set, v) => {
                self.write(f, v, ATOM)?;
                write!(f, " in {}", self.set(*set))?;
            }
            Expr::SetLen(set) => write!(f, "{}.size", self.set(*set))?,
        }
        if paren {
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for ExprDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, self.expr, 0)
    }
}

/// `v = expr`, or `v += n` / `v -= n` when the update has that shape.
pub fn update_to_string(u: &Update, event: Option<&Event>, vars: &[Var]) -> String {
    let name = vars
        .get(u.var as usize)
        .map_or_else(|| format!("$var{}", u.var), |v| v.name.clone());
    if let Expr::Binary(op @ (BinOp::Add | BinOp::Sub), l, r) = &u.value {
        if **l == Expr::Var(u.var) {
            let sym = if *op == BinOp::Add { "+=" } else { "-=" };
            return format!("{name} {sym} {}", r.display(event, vars));
        }
    }
    format!("{name} = {}", u.value.display(event, vars))
}

/// `s += x` (insert) or `s -= x` (remove).
pub fn set_update_to_string(u: &SetUpdate, event: Option<&Event>, policy: &Policy) -> String {
    let name = policy
        .sets
        .get(u.set as usize)
        .map_or_else(|| format!("$set{}", u.set), |s| s.name.clone());
    let sym = if u.insert { "+=" } else { "-=" };
    format!("{name} {sym} {}", u.value.display_in(event, policy))
}

/// A transition in source syntax (with its `in` list spelled out), e.g.
/// `on path_open in clean when path glob "/data/**" -> tainted;`.
pub fn transition_to_string(t: &Transition, policy: &Policy, events: &[Event]) -> String {
    let event = events.get(t.event as usize);
    let mut s = String::new();
    s.push_str(if t.phase == Phase::Pre {
        "on "
    } else {
        "after "
    });
    s.push_str(event.map_or("?", |e| e.name.as_str()));
    if t.from.len() != policy.states.len() {
        let names: Vec<&str> = t
            .from
            .iter()
            .filter_map(|st| policy.states.get(*st as usize))
            .map(|st| st.name.as_str())
            .collect();
        s.push_str(" in ");
        s.push_str(&names.join(", "));
    }
    if t.guard != Expr::Bool(true) {
        s.push_str(&format!(" when {}", t.guard.display_in(event, policy)));
    }
    if !t.updates.is_empty() || !t.set_updates.is_empty() {
        let ups: Vec<String> = t
            .updates
            .iter()
            .map(|u| update_to_string(u, event, &policy.vars))
            .chain(
                t.set_updates
                    .iter()
                    .map(|u| set_update_to_string(u, event, policy)),
            )
            .collect();
        s.push_str(&format!(" do {}", ups.join(", ")));
    }
    s.push_str(&target_to_string(t, policy));
    s.push(';');
    s
}

/// ` -> deny "..."`, ` -> tainted`, ... (empty for allow-and-stay).
pub fn target_to_string(t: &Transition, policy: &Policy) -> String {
    let reason = |r: &Option<String>| {
        r.as_ref()
            .map(|r| format!(" {}", quote(r)))
            .unwrap_or_default()
    };
    let next = t
        .next
        .and_then(|n| policy.states.get(n as usize))
        .map(|s| s.name.as_str());
    match (&t.verdict, next) {
        (Verdict::Deny, _) => format!(" -> deny{}", reason(&t.reason)),
        (Verdict::Suppress(v), _) => {
            let v = v.map(|v| format!(" {v}")).unwrap_or_default();
            format!(" -> suppress{v}{}", reason(&t.reason))
        }
        (Verdict::Audit, Some(n)) => format!(" -> {n} audit{}", reason(&t.reason)),
        (Verdict::Audit, None) => format!(" -> audit{}", reason(&t.reason)),
        (Verdict::Allow, Some(n)) => format!(" -> {n}"),
        (Verdict::Allow, None) => String::new(),
    }
}

/// `(fd: i32, path: string) -> i32`: an event's parameters and results as the policy
/// language writes them.
pub fn signature(e: &Event) -> String {
    let ty = |t: ParamType| match t {
        ParamType::I32 => "i32",
        ParamType::I64 => "i64",
        ParamType::F32 => "f32",
        ParamType::F64 => "f64",
        ParamType::Str => "string",
    };
    let params: Vec<String> = e
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, ty(p.ty)))
        .collect();
    let res = match e.results.as_slice() {
        [] => String::new(),
        rs => format!(
            " -> {}",
            rs.iter()
                .map(|r| match r {
                    ValType::I32 => "i32",
                    ValType::I64 => "i64",
                    ValType::F32 => "f32",
                    ValType::F64 => "f64",
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("({}){res}", params.join(", "))
}
