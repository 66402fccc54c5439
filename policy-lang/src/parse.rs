//! Parsing policy text into the syntax tree ([`crate::ast`]).
//!
//! pest does the recognising (`grammar.pest`); this module turns its pairs into typed
//! nodes with spans, resolves operator precedence with a Pratt parser, decodes literals,
//! and turns pest's errors into [`Diagnostic`]s with an "expected ..." text.
use crate::ast::*;
use crate::diag::{Diagnostic, Severity, Source};
use crate::ir::BinOp as IrBin;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use std::sync::OnceLock;

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
struct PolicyParser;

/// Deepest allowed nesting of parentheses or prefix operators, and of expression trees;
/// keeps hostile input from exhausting the stack of the (recursive) parser and checker.
pub const MAX_NESTING: usize = 64;
/// Deepest allowed expression tree (long operator chains build deep trees).
pub const MAX_EXPR_DEPTH: usize = 256;

/// Parses `sources[file]`.
pub fn parse_file(sources: &[Source], file: FileId) -> Result<File, Vec<Diagnostic>> {
    let text = &sources[file].text;
    let err = |start: usize, end: usize, msg: String| {
        Diagnostic::at(Severity::Error, sources, Span { file, start, end }, msg)
    };
    if let Some(pos) = too_deep(text) {
        return Err(vec![err(
            pos,
            pos + 1,
            format!(
            "nesting too deep: at most {MAX_NESTING} parentheses or prefix operators may be nested"
        ),
        )]);
    }
    let pairs = match PolicyParser::parse(Rule::file, text) {
        Ok(p) => p,
        Err(e) => {
            // pest cannot tell an unterminated string or comment from other mistakes.
            if let Some((start, len, msg, hint)) = unterminated(text) {
                return Err(vec![
                    err(start, start + len, msg.to_string()).with_hint(hint)
                ]);
            }
            return Err(vec![syntax_error(sources, file, &e)]);
        }
    };
    let mut b = Builder {
        file,
        sources,
        errors: Vec::new(),
    };
    let file_pair = pairs
        .into_iter()
        .next()
        .expect("the file rule always yields one pair");
    let mut items = Vec::new();
    for p in file_pair.into_inner() {
        if p.as_rule() == Rule::EOI {
            continue;
        }
        if let Some(item) = b.item(p) {
            items.push(item);
        }
    }
    if b.errors.is_empty() {
        Ok(File { items })
    } else {
        Err(b.errors)
    }
}

/// Parses a built-in expression (the catalogue's access conditions) and gives every node
/// `span`, the place in the policy that brought it in. Built-in texts are tested to parse.
pub(crate) fn parse_builtin_expr(text: &str, span: Span) -> Option<Expr> {
    let pair = PolicyParser::parse(Rule::builtin_expr, text)
        .ok()?
        .next()?
        .into_inner()
        .next()?;
    let sources = [Source {
        name: "<built-in>".into(),
        text: text.to_string(),
    }];
    let mut b = Builder {
        file: 0,
        sources: &sources,
        errors: Vec::new(),
    };
    let mut e = b.expr(pair)?;
    respan(&mut e, span);
    Some(e)
}

fn respan(e: &mut Expr, span: Span) {
    e.span = span;
    match &mut e.kind {
        ExprKind::Int(_) | ExprKind::Name(_) => {}
        ExprKind::Field(a, b) | ExprKind::Is(a, b) => {
            a.span = span;
            b.span = span;
        }
        ExprKind::Unary(_, a) => respan(a, span),
        ExprKind::Binary(_, a, b) => {
            respan(a, span);
            respan(b, span);
        }
        ExprKind::StrTest(n, _, lit) => {
            n.name.span = span;
            if let Some(f) = &mut n.field {
                f.span = span;
            }
            lit.span = span;
        }
        ExprKind::In(v, set) => {
            respan(v, span);
            set.span = span;
        }
    }
}

/// The byte offset where parentheses or prefix operators nest deeper than [`MAX_NESTING`],
/// skipping strings and comments.
pub(crate) fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut prefix_run, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                prefix_run = 0;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b')' => depth = depth.saturating_sub(1),
            b'!' | b'-' | b'~' => {
                prefix_run += 1;
                if prefix_run > MAX_NESTING {
                    return Some(i);
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => prefix_run = 0,
        }
        i += 1;
    }
    None
}

/// The first string literal that reaches the end of its line, or block comment that
/// reaches the end of the file: `(offset, length, message, hint)`.
pub(crate) fn unterminated(text: &str) -> Option<(usize, usize, &'static str, &'static str)> {
    let bytes = text.as_bytes();
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if i >= bytes.len() || bytes[i] == b'\n' {
                    return Some((
                        start,
                        1,
                        "unterminated string",
                        "strings end with `\"` on the same line",
                    ));
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let start = i;
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                if i >= bytes.len() {
                    return Some((
                        start,
                        2,
                        "unterminated block comment",
                        "block comments end with `*/` (they do not nest)",
                    ));
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A friendly name for what a grammar rule stands for, or `None` for rules that are
/// summarised by others (e.g. the individual operators).
/// The rules of binary operators, in both grammars (policies and traces), by name.
const OPERATOR_RULES: &[&str] = &[
    "or", "and", "has", "eq_op", "ne", "lt", "le", "gt", "ge", "bitor", "bitxor", "bitand", "shl",
    "shr", "add", "sub", "mul", "div", "rem",
];

/// Whether `rule` (of either grammar) is a binary operator, for "expected an operator".
pub(crate) fn is_operator(rule: impl std::fmt::Debug) -> bool {
    OPERATOR_RULES.contains(&format!("{rule:?}").as_str())
}

fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::semi => "`;`",
        Rule::arrow => "`->`",
        Rule::eq => "`=`",
        Rule::colon => "`:`",
        Rule::comma => "`,`",
        Rule::dot => "`.`",
        Rule::dotdot => "`..`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::field => "`.field`",
        Rule::kw_is => "`is`",
        Rule::set_type => "`set[CAPACITY]`",
        Rule::undelivered_audits => "`undelivered audits`",
        Rule::ident | Rule::name => "a name",
        Rule::string => "a string",
        Rule::int => "a number",
        Rule::expr | Rule::paren | Rule::not | Rule::neg | Rule::bitnot => "an expression",
        r if is_operator(r) => "an operator",
        Rule::str_op | Rule::startswith | Rule::glob => "a string test",
        Rule::update_op => "`=`, `+=` or `-=`",
        Rule::kw_include | Rule::include => "`include`",
        Rule::kw_event | Rule::event_decl => "`event`",
        Rule::kw_const | Rule::const_decl => "`const`",
        Rule::kw_set | Rule::set_decl => "`set`",
        Rule::kw_policy | Rule::policy => "`policy`",
        Rule::kw_initial => "`initial`",
        Rule::kw_state | Rule::state_decl => "`state`",
        Rule::kw_var | Rule::var_decl => "`var`",
        Rule::kw_allow | Rule::allow_decl => "`allow`",
        Rule::shared_memory_strings => "`shared memory strings`",
        Rule::phase | Rule::transition => "`on` or `after`",
        Rule::kw_in | Rule::in_clause => "`in`",
        Rule::kw_when | Rule::when_clause => "`when`",
        Rule::kw_do | Rule::do_clause => "`do`",
        Rule::target => "`->`",
        Rule::kw_deny | Rule::deny_target => "`deny`",
        Rule::kw_suppress | Rule::suppress_target => "`suppress`",
        Rule::kw_audit | Rule::audit_target => "`audit`",
        Rule::import_sig => "an import `module.field(...)`",
        Rule::param_decl => "a parameter `name: type`",
        Rule::EOI => "end of file",
        _ => return None,
    })
}

fn syntax_error(sources: &[Source], file: FileId, e: &pest::error::Error<Rule>) -> Diagnostic {
    let text = &sources[file].text;
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let found = token_at(text, pos);
    let end = pos + found.len();
    let found_text = if found.is_empty() {
        "end of file".to_string()
    } else {
        format!("`{found}`")
    };
    let mut expected: Vec<&str> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for r in positives {
            if let Some(d) = describe(*r) {
                if !expected.contains(&d) {
                    expected.push(d);
                }
            }
        }
    }
    let message = if expected.is_empty() {
        format!("syntax error: unexpected {found_text}")
    } else {
        format!(
            "syntax error: expected {}, found {found_text}",
            one_of(&expected)
        )
    };
    let mut d = Diagnostic::at(
        Severity::Error,
        sources,
        Span {
            file,
            start: pos,
            end,
        },
        message,
    );
    if let Some(hint) = syntax_hint(&expected, found) {
        d = d.with_hint(hint);
    }
    d
}

fn syntax_hint(expected: &[&str], found: &str) -> Option<String> {
    let keyword = [
        "include",
        "event",
        "const",
        "set",
        "policy",
        "initial",
        "state",
        "var",
        "allow",
        "on",
        "after",
        "in",
        "when",
        "do",
        "deny",
        "suppress",
        "audit",
        "has",
        "startswith",
        "glob",
    ];
    if expected.contains(&"a name") && keyword.contains(&found) {
        return Some(format!(
            "`{found}` is a keyword and cannot be used as a name"
        ));
    }
    if expected.contains(&"`;`") && expected.len() <= 2 {
        return Some("declarations and transitions end with `;`".into());
    }
    if found == "=" && expected.contains(&"an operator") {
        return Some("compare with `==`".into());
    }
    None
}

/// "`a`", "`a` or `b`", "`a`, `b` or `c`".
pub(crate) fn one_of(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The token starting at `pos`, for "found ..." texts: a word, a number, a string start,
/// or one character (empty at end of input).
pub(crate) fn token_at(text: &str, pos: usize) -> &str {
    let rest = &text[pos.min(text.len())..];
    let Some(c) = rest.chars().next() else {
        return "";
    };
    if c.is_ascii_alphanumeric() || c == '_' {
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        return &rest[..n];
    }
    for op in [
        "->", "==", "!=", "<=", ">=", "&&", "||", "<<", ">>", "+=", "-=", "..", "//", "/*",
    ] {
        if rest.starts_with(op) {
            return &rest[..2];
        }
    }
    &rest[..c.len_utf8()]
}

/// A Pratt parser of left-associative binary levels, lowest first, then one prefix level:
/// how both grammars (policies and traces) state their C precedence as data.
pub(crate) fn c_precedence<R: pest::RuleType>(infix: &[&[R]], prefix: &[R]) -> PrattParser<R> {
    let level = |ops: Vec<Op<R>>| ops.into_iter().reduce(|a, b| a | b);
    let mut p = PrattParser::new();
    for ops in infix {
        if let Some(op) = level(ops.iter().map(|&r| Op::infix(r, Assoc::Left)).collect()) {
            p = p.op(op);
        }
    }
    if let Some(op) = level(prefix.iter().map(|&r| Op::prefix(r)).collect()) {
        p = p.op(op);
    }
    p
}

fn pratt() -> &'static PrattParser<Rule> {
    static P: OnceLock<PrattParser<Rule>> = OnceLock::new();
    use Rule::*;
    // `has` binds looser than the bitwise operators so that
    // `oflags has OFLAGS_CREAT | OFLAGS_TRUNC` tests both flags.
    P.get_or_init(|| {
        c_precedence(
            &[
                &[or],
                &[and],
                &[has],
                &[bitor],
                &[bitxor],
                &[bitand],
                &[eq_op, ne],
                &[lt, le, gt, ge],
                &[shl, shr],
                &[add, sub],
                &[mul, div, rem],
            ],
            &[not, neg, bitnot],
        )
    })
}

struct Builder<'a> {
    file: FileId,
    sources: &'a [Source],
    errors: Vec<Diagnostic>,
}

impl<'a> Builder<'a> {
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        Span {
            file: self.file,
            start: s.start(),
            end: s.end(),
        }
    }

    fn error(&mut self, span: Span, msg: impl Into<String>) -> &mut Diagnostic {
        self.errors
            .push(Diagnostic::at(Severity::Error, self.sources, span, msg));
        self.errors.last_mut().expect("just pushed")
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    /// The children that carry meaning: keywords and punctuation are dropped.
    fn parts<'i>(p: Pair<'i, Rule>) -> impl Iterator<Item = Pair<'i, Rule>> {
        p.into_inner().filter(|c| {
            !matches!(
                c.as_rule(),
                Rule::semi
                    | Rule::arrow
                    | Rule::eq
                    | Rule::colon
                    | Rule::comma
                    | Rule::dot
                    | Rule::dotdot
                    | Rule::lparen
                    | Rule::rparen
                    | Rule::lbrace
                    | Rule::rbrace
                    | Rule::lbracket
                    | Rule::rbracket
                    | Rule::kw_include
                    | Rule::kw_event
                    | Rule::kw_const
                    | Rule::kw_set
                    | Rule::kw_policy
                    | Rule::kw_state
                    | Rule::kw_var
                    | Rule::kw_allow
                    | Rule::kw_in
                    | Rule::kw_when
                    | Rule::kw_do
                    | Rule::kw_deny
                    | Rule::kw_suppress
                    | Rule::shared_memory_strings
            )
        })
    }

    fn item(&mut self, p: Pair<Rule>) -> Option<Item> {
        let span = self.span(&p);
        Some(match p.as_rule() {
            Rule::include => {
                let s = Self::parts(p).next()?;
                Item::Include(self.string(s)?)
            }
            Rule::event_decl => {
                let mut it = Self::parts(p);
                let name = self.ident(it.next()?);
                let body = it.next()?;
                let body = match body.as_rule() {
                    Rule::ident => EventBody::Alias(self.ident(body)),
                    _ => self.import_sig(body)?,
                };
                Item::Event(EventDecl { name, body, span })
            }
            Rule::const_decl => {
                let mut it = Self::parts(p);
                let name = self.ident(it.next()?);
                let value = self.expr(it.next()?)?;
                Item::Const(ConstDecl { name, value })
            }
            Rule::set_decl => {
                let mut it = Self::parts(p);
                let name = self.ident(it.next()?);
                let members = it.map(|m| self.ident(m)).collect();
                Item::Set(SetDecl { name, members })
            }
            Rule::policy => Item::Policy(self.policy(p)?),
            r => unreachable!("grammar yields no top-level {r:?}"),
        })
    }

    fn import_sig(&mut self, p: Pair<Rule>) -> Option<EventBody> {
        let declared = p.clone().into_inner().any(|c| c.as_rule() == Rule::lparen);
        let mut it = Self::parts(p).peekable();
        let module = self.import_name(it.next()?)?;
        let field = self.import_name(it.next()?)?;
        let mut params = Vec::new();
        let mut result = None;
        for c in it {
            match c.as_rule() {
                Rule::param_decl => {
                    let mut pi = Self::parts(c);
                    let name = self.ident(pi.next()?);
                    let ty = self.ident(pi.next()?);
                    params.push(ParamDecl { name, ty });
                }
                Rule::ident => result = Some(self.ident(c)),
                _ => {}
            }
        }
        Some(EventBody::Import {
            module,
            field,
            params: declared.then_some(params),
            result,
        })
    }

    fn import_name(&mut self, p: Pair<Rule>) -> Option<StrLit> {
        match p.as_rule() {
            Rule::string => self.string(p),
            _ => Some(StrLit {
                value: p.as_str().to_string(),
                span: self.span(&p),
            }),
        }
    }

    fn policy(&mut self, p: Pair<Rule>) -> Option<PolicyDecl> {
        let span = self.span(&p);
        let mut it = Self::parts(p);
        let name = self.ident(it.next()?);
        let mut policy = PolicyDecl {
            name,
            states: Vec::new(),
            vars: Vec::new(),
            set_vars: Vec::new(),
            allow_shared: Vec::new(),
            allow_undelivered: Vec::new(),
            transitions: Vec::new(),
            span,
        };
        for c in it {
            match c.as_rule() {
                Rule::state_decl => {
                    let mut initial = None;
                    for s in Self::parts(c) {
                        match s.as_rule() {
                            Rule::kw_initial => initial = Some(self.span(&s)),
                            Rule::ident => policy.states.push(StateDecl {
                                name: self.ident(s),
                                initial,
                            }),
                            _ => {}
                        }
                    }
                }
                Rule::var_decl => {
                    let mut vi = Self::parts(c);
                    let name = self.ident(vi.next()?);
                    let first = vi.next()?;
                    if first.as_rule() == Rule::set_type {
                        let capacity = Self::parts(first)
                            .find(|p| p.as_rule() == Rule::expr)
                            .and_then(|e| self.expr(e));
                        if let Some(capacity) = capacity {
                            policy.set_vars.push(SetVarDecl { name, capacity });
                        }
                        continue;
                    }
                    let min = self.expr(first);
                    let max = self.expr(vi.next()?);
                    let init = self.expr(vi.next()?);
                    if let (Some(min), Some(max), Some(init)) = (min, max, init) {
                        policy.vars.push(VarDecl {
                            name,
                            min,
                            max,
                            init,
                        });
                    }
                }
                Rule::allow_decl => {
                    let span = self.span(&c);
                    match Self::parts(c).next().map(|p| p.as_rule()) {
                        Some(Rule::undelivered_audits) => policy.allow_undelivered.push(span),
                        _ => policy.allow_shared.push(span),
                    }
                }
                Rule::transition => {
                    if let Some(t) = self.transition(c) {
                        policy.transitions.push(t);
                    }
                }
                _ => {}
            }
        }
        Some(policy)
    }

    fn transition(&mut self, p: Pair<Rule>) -> Option<TransitionDecl> {
        let span = self.span(&p);
        let mut it = Self::parts(p);
        let phase = match it.next()?.as_str() {
            "on" => Phase::On,
            _ => Phase::After,
        };
        let event = self.ident(it.next()?);
        let mut t = TransitionDecl {
            phase,
            event,
            from: None,
            guard: None,
            updates: Vec::new(),
            target: None,
            span,
        };
        let mut ok = true;
        for c in it {
            match c.as_rule() {
                Rule::in_clause => t.from = Some(Self::parts(c).map(|s| self.ident(s)).collect()),
                Rule::when_clause => match self.expr(Self::parts(c).next()?) {
                    Some(e) => t.guard = Some(e),
                    None => ok = false,
                },
                Rule::do_clause => {
                    for u in Self::parts(c) {
                        let uspan = self.span(&u);
                        let mut ui = Self::parts(u);
                        let var = self.ident(ui.next()?);
                        let op = match ui.next()?.as_str() {
                            "+=" => UpdateOp::Add,
                            "-=" => UpdateOp::Sub,
                            _ => UpdateOp::Assign,
                        };
                        match self.expr(ui.next()?) {
                            Some(value) => t.updates.push(UpdateDecl {
                                var,
                                op,
                                value,
                                span: uspan,
                            }),
                            None => ok = false,
                        }
                    }
                }
                Rule::target => match self.target(Self::parts(c).next()?) {
                    Some(target) => t.target = Some(target),
                    None => ok = false,
                },
                _ => {}
            }
        }
        ok.then_some(t)
    }

    fn target(&mut self, p: Pair<Rule>) -> Option<Target> {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut it = Self::parts(p).peekable();
        Some(match rule {
            Rule::deny_target => Target::Deny {
                reason: self.string(it.next()?)?,
                span,
            },
            Rule::suppress_target => {
                let mut value = None;
                let mut reason = None;
                for c in it {
                    match c.as_rule() {
                        Rule::expr => value = Some(self.expr(c)?),
                        Rule::string => reason = Some(self.string(c)?),
                        _ => {}
                    }
                }
                Target::Suppress {
                    value,
                    reason,
                    span,
                }
            }
            Rule::audit_target => {
                let reason = match it.find(|c| c.as_rule() == Rule::string) {
                    Some(s) => Some(self.string(s)?),
                    None => None,
                };
                Target::Audit { reason, span }
            }
            Rule::state_target => {
                let state = self.ident(it.next()?);
                let audit = match it.find(|c| c.as_rule() == Rule::string) {
                    Some(s) => Some(self.string(s)?),
                    None => None,
                };
                Target::State { state, audit }
            }
            r => unreachable!("grammar yields no target {r:?}"),
        })
    }

    /// Decodes a string literal. Escapes: `\\`, `\"`, `\n`, `\t`, `\r`, `\0`; `\*`, `\?`
    /// and `\/` are kept as written so glob escapes read naturally.
    fn string(&mut self, p: Pair<Rule>) -> Option<StrLit> {
        let span = self.span(&p);
        let inner = p.as_str();
        let inner = &inner[1..inner.len() - 1];
        let mut value = String::with_capacity(inner.len());
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                value.push(c);
                continue;
            }
            let Some((_, e)) = chars.next() else { break };
            match e {
                '\\' => value.push('\\'),
                '"' => value.push('"'),
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'r' => value.push('\r'),
                '0' => value.push('\0'),
                '*' | '?' | '/' => {
                    value.push('\\');
                    value.push(e);
                }
                other => {
                    let at = span.start + 1 + i;
                    let esc = Span {
                        file: span.file,
                        start: at,
                        end: at + 1 + other.len_utf8(),
                    };
                    let d = self.error(esc, format!("unknown escape `\\{other}` in string"));
                    d.hint = Some("known escapes: `\\\\`, `\\\"`, `\\n`, `\\t`, `\\r`, `\\0`, and the glob escapes `\\*`, `\\?`".into());
                    return None;
                }
            }
        }
        Some(StrLit { value, span })
    }

    fn expr(&mut self, p: Pair<Rule>) -> Option<Expr> {
        debug_assert_eq!(p.as_rule(), Rule::expr);
        self.expr_pairs(p.into_inner()).map(|(e, _)| e)
    }

    /// Builds an expression and its depth; `None` after reporting an error.
    fn expr_pairs(&mut self, pairs: Pairs<Rule>) -> Option<(Expr, usize)> {
        let file = self.file;
        let this = std::cell::RefCell::new(self);
        let result = pratt()
            .map_primary(|p| this.borrow_mut().primary(p))
            .map_prefix(|op, rhs| {
                let (rhs, depth) = rhs?;
                let start = op.as_span().start();
                let uop = match op.as_rule() {
                    Rule::not => UnOp::Not,
                    Rule::neg => UnOp::Neg,
                    _ => UnOp::BitNot,
                };
                let span = Span {
                    file,
                    start,
                    end: rhs.span.end,
                };
                // Fold `-literal` so that i64::MIN can be written.
                if let (UnOp::Neg, ExprKind::Int(v)) = (uop, &rhs.kind) {
                    return Some((
                        Expr {
                            kind: ExprKind::Int(v.wrapping_neg()),
                            span,
                        },
                        depth,
                    ));
                }
                Some((
                    Expr {
                        kind: ExprKind::Unary(uop, Box::new(rhs)),
                        span,
                    },
                    depth + 1,
                ))
            })
            .map_infix(|lhs, op, rhs| {
                let ((lhs, dl), (rhs, dr)) = (lhs?, rhs?);
                let depth = dl.max(dr) + 1;
                let span = lhs.span.to(rhs.span);
                if depth > MAX_EXPR_DEPTH {
                    this.borrow_mut().error(
                        span,
                        format!("expression too deep: at most {MAX_EXPR_DEPTH} nested operators"),
                    );
                    return None;
                }
                let bop = match op.as_rule() {
                    Rule::has => BinOp::Has,
                    rule => BinOp::Ir(match rule {
                        Rule::or => IrBin::Or,
                        Rule::and => IrBin::And,
                        Rule::eq_op => IrBin::Eq,
                        Rule::ne => IrBin::Ne,
                        Rule::lt => IrBin::Lt,
                        Rule::le => IrBin::Le,
                        Rule::gt => IrBin::Gt,
                        Rule::ge => IrBin::Ge,
                        Rule::bitor => IrBin::BitOr,
                        Rule::bitxor => IrBin::BitXor,
                        Rule::bitand => IrBin::BitAnd,
                        Rule::shl => IrBin::Shl,
                        Rule::shr => IrBin::Shr,
                        Rule::add => IrBin::Add,
                        Rule::sub => IrBin::Sub,
                        Rule::mul => IrBin::Mul,
                        Rule::div => IrBin::Div,
                        _ => IrBin::Rem,
                    }),
                };
                Some((
                    Expr {
                        kind: ExprKind::Binary(bop, Box::new(lhs), Box::new(rhs)),
                        span,
                    },
                    depth,
                ))
            })
            .parse(pairs);
        result
    }

    fn primary(&mut self, p: Pair<Rule>) -> Option<(Expr, usize)> {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::int => {
                let text: String = p.as_str().chars().filter(|c| *c != '_').collect();
                let value = if let Some(hex) =
                    text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))
                {
                    // Hex literals are bit patterns: up to 64 bits, reinterpreted as i64.
                    u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
                } else {
                    text.parse::<i64>().ok()
                };
                match value {
                    Some(v) => Some((
                        Expr {
                            kind: ExprKind::Int(v),
                            span,
                        },
                        1,
                    )),
                    None => {
                        let d = self.error(
                            span,
                            format!("integer literal `{}` does not fit in 64 bits", p.as_str()),
                        );
                        d.hint = Some("integers are i64: decimal up to 9223372036854775807, hex up to 0xFFFF_FFFF_FFFF_FFFF".into());
                        None
                    }
                }
            }
            Rule::name => {
                let mut it = p.into_inner().peekable();
                let name = self.ident(it.next()?);
                let field = match it.peek().map(|p| p.as_rule()) {
                    Some(Rule::field) => it
                        .next()
                        .and_then(|f| f.into_inner().next())
                        .map(|f| self.ident(f)),
                    _ => None,
                };
                let operand = NameRef { name, field };
                let Some(op) = it.next() else {
                    let span = operand.span();
                    let kind = match operand.field {
                        Some(field) => ExprKind::Field(operand.name, field),
                        None => ExprKind::Name(operand.name.name),
                    };
                    return Some((Expr { span, kind }, 1));
                };
                let kind = match op.as_rule() {
                    Rule::kw_is | Rule::kw_in => {
                        let what = self.ident(it.next()?);
                        if let Some(f) = &operand.field {
                            let d = self.error(
                                f.span,
                                format!(
                                    "`{}` cannot be tested with `{}`",
                                    operand.text(),
                                    op.as_str()
                                ),
                            );
                            d.hint = Some(match op.as_rule() {
                                Rule::kw_is => {
                                    "`is` tests a descriptor parameter: `fd is socket`".into()
                                }
                                _ => "`in` tests an integer: `handle in open_handles`".into(),
                            });
                            return None;
                        }
                        if op.as_rule() == Rule::kw_is {
                            ExprKind::Is(operand.name, what)
                        } else {
                            let value = Expr {
                                span: operand.name.span,
                                kind: ExprKind::Name(operand.name.name),
                            };
                            ExprKind::In(Box::new(value), what)
                        }
                    }
                    _ => {
                        let sop = match op.as_str() {
                            "==" => StrOp::Eq,
                            "!=" => StrOp::Ne,
                            "startswith" => StrOp::StartsWith,
                            _ => StrOp::Glob,
                        };
                        let lit = self.string(it.next()?)?;
                        ExprKind::StrTest(operand, sop, lit)
                    }
                };
                let end = match &kind {
                    ExprKind::StrTest(_, _, lit) => lit.span,
                    ExprKind::Is(_, w) | ExprKind::In(_, w) => w.span,
                    _ => span,
                };
                let start = match &kind {
                    ExprKind::StrTest(o, _, _) => o.name.span,
                    ExprKind::Is(n, _) => n.span,
                    ExprKind::In(v, _) => v.span,
                    _ => span,
                };
                Some((
                    Expr {
                        kind,
                        span: start.to(end),
                    },
                    1,
                ))
            }
            Rule::paren => {
                let inner = Self::parts(p).next()?;
                let (mut e, d) = self.expr_pairs(inner.into_inner())?;
                e.span = span;
                Some((e, d))
            }
            r => unreachable!("grammar yields no primary {r:?}"),
        }
    }
}
