//! The syntax tree of policy files. Every node carries a [`Span`] into its source file so
//! that checks can report exact locations.

/// Index of a source file in the compilation's source list.
pub type FileId = usize;

/// A byte range `start..end` in file `file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The smallest span covering both `self` and `other` (same file assumed).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A name as written, with its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A string literal, escapes already resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// One parsed file.
#[derive(Clone, Debug, Default)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug)]
pub enum Item {
    Include(StrLit),
    Event(EventDecl),
    Const(ConstDecl),
    Set(SetDecl),
    Policy(PolicyDecl),
}

#[derive(Clone, Debug)]
pub struct EventDecl {
    pub name: Ident,
    pub body: EventBody,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum EventBody {
    /// `event write = fd_write;`: another name for a catalogue function or declared event.
    Alias(Ident),
    /// `event x = module.field(params) -> result;`, or `event x = module.field;` for a
    /// catalogue function (its signature is the catalogue's).
    Import {
        module: StrLit,
        field: StrLit,
        /// `None` without a parameter list.
        params: Option<Vec<ParamDecl>>,
        result: Option<Ident>,
    },
}

#[derive(Clone, Debug)]
pub struct ParamDecl {
    pub name: Ident,
    pub ty: Ident,
}

#[derive(Clone, Debug)]
pub struct ConstDecl {
    pub name: Ident,
    pub value: Expr,
}

#[derive(Clone, Debug)]
pub struct SetDecl {
    pub name: Ident,
    pub members: Vec<Ident>,
}

#[derive(Clone, Debug)]
pub struct PolicyDecl {
    pub name: Ident,
    pub states: Vec<StateDecl>,
    pub vars: Vec<VarDecl>,
    /// `var NAME: set[CAPACITY];` declarations.
    pub set_vars: Vec<SetVarDecl>,
    /// Spans of `allow shared memory strings;` declarations.
    pub allow_shared: Vec<Span>,
    /// Spans of `allow undelivered audits;` declarations.
    pub allow_undelivered: Vec<Span>,
    pub transitions: Vec<TransitionDecl>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct StateDecl {
    pub name: Ident,
    /// Span of the `initial` keyword when present.
    pub initial: Option<Span>,
}

#[derive(Clone, Debug)]
pub struct VarDecl {
    pub name: Ident,
    pub min: Expr,
    pub max: Expr,
    pub init: Expr,
}

/// `var NAME: set[CAPACITY];`: a bounded set of integers, initially empty.
#[derive(Clone, Debug)]
pub struct SetVarDecl {
    pub name: Ident,
    pub capacity: Expr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    On,
    After,
}

#[derive(Clone, Debug)]
pub struct TransitionDecl {
    pub phase: Phase,
    /// An event or a set of events.
    pub event: Ident,
    /// `None`: from every state.
    pub from: Option<Vec<Ident>>,
    pub guard: Option<Expr>,
    pub updates: Vec<UpdateDecl>,
    pub target: Option<Target>,
    /// The whole transition, for messages.
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateOp {
    Assign,
    Add,
    Sub,
}

#[derive(Clone, Debug)]
pub struct UpdateDecl {
    pub var: Ident,
    pub op: UpdateOp,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Target {
    Deny {
        reason: StrLit,
        span: Span,
    },
    Suppress {
        value: Option<Expr>,
        reason: Option<StrLit>,
        span: Span,
    },
    Audit {
        reason: Option<StrLit>,
        span: Span,
    },
    State {
        state: Ident,
        audit: Option<StrLit>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
    BitNot,
}

/// A binary operator as written: one the IR has, or `has` (`x has F` lowers to
/// `(x & F) == F`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Ir(crate::ir::BinOp),
    Has,
}

impl BinOp {
    /// The operator as written in source.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Ir(op) => op.symbol(),
            BinOp::Has => "has",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrOp {
    Eq,
    Ne,
    StartsWith,
    Glob,
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// A name as an operand: `fd`, or a field of it, `fd.path`.
#[derive(Clone, Debug)]
pub struct NameRef {
    pub name: Ident,
    pub field: Option<Ident>,
}

impl NameRef {
    pub fn span(&self) -> Span {
        match &self.field {
            Some(f) => self.name.span.to(f.span),
            None => self.name.span,
        }
    }

    /// As written: `fd` or `fd.path`.
    pub fn text(&self) -> String {
        match &self.field {
            Some(f) => format!("{}.{}", self.name.name, f.name),
            None => self.name.name.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Int(i64),
    Name(String),
    /// `name.field` used as a value (`fd.writable`, `handles.size`).
    Field(Ident, Ident),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `operand op "literal"`.
    StrTest(NameRef, StrOp, StrLit),
    /// `fd is KIND`: what the descriptor in `fd` is.
    Is(Ident, Ident),
    /// `value in SET`: membership in a set variable.
    In(Box<Expr>, Ident),
}
