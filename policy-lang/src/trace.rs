//! Trace tests: the `.traces` file format, its parser, and the runner behind `irm test`.
//!
//! A `.traces` file sits next to the policy it tests (`no-exfil.pol` ↔ `no-exfil.traces`):
//!
//! ```text
//! // traces for no-exfil.pol
//! with "fragments/extra.pol";              // optional: more policy files to compose with
//!
//! accept "sending without reading is fine" {
//!   sock_send(fd=5)
//! }
//! reject "send after read" at 2 by no_exfil "network send after a file read" {
//!   fd_read(fd=4)
//!   sock_send(fd=5)
//! }
//! accept "sockets get EACCES" {
//!   sock_send(fd=5) => suppress ERRNO_ACCES
//!   path_open(fd=3, path="a.txt", oflags=OFLAGS_CREAT|OFLAGS_TRUNC) -> 0 => audit "file opened"
//! }
//! ```
//!
//! * A step is `event(param=value, ...)`: events by their policy name (or import field),
//!   arguments by parameter name. Missing arguments are `0` / the empty string. Integer
//!   values are constant expressions over integers and named constants (the built-in
//!   WASI ones such as `ERRNO_ACCES`, `OFLAGS_CREAT`) with `| & ^ << >> + - * ~` and
//!   parentheses. String values are quoted (`\" \\ \n \t \0 \xNN` escapes); `oob` stands
//!   for a pointer/length outside memory.
//! * `-> N` gives the import's result for post-call (`after`) transitions (default 0).
//! * `=> E, E...` lists what that step must report, exactly: each `E` is
//!   `audit ["reason"] [by POLICY]` or `suppress [VALUE] ["reason"] [by POLICY]`. A step
//!   without `=>` must report nothing; audits and suppressions are compared in order.
//! * `reject "name" at N by POLICY ["reason"]` expects the first deny at step N (1-based)
//!   by that policy, with that reason when given.
//!
//! Verdicts come from a [`Judge`]: the reference interpreter ([`Interpreter`]) is the
//! first; a woven module run in wasmtime is another, so `irm test` can check both agree
//! with the expectations written here.
use std::fmt;
use std::path::{Path, PathBuf};

use crate::diag::suggest;
use crate::interp::{self, ObservationKind, TraceEvent, Value, Verdict};
use crate::ir::{Event, EventId, ParamType, Program};

// ---- data ---------------------------------------------------------------------------

/// What a trace expects overall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Accept,
    Reject {
        /// 1-based step of the first deny.
        step: usize,
        policy: String,
        /// Checked only when given.
        reason: Option<String>,
    },
}

/// One audit or suppression a step must report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub kind: ExpectKind,
    pub reason: Option<String>,
    pub policy: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectKind {
    Audit,
    /// The expected return value, when given.
    Suppress(Option<i64>),
}

/// One call of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub call: TraceEvent,
    /// Every audit and suppression the step reports, in order.
    pub expect: Vec<Expectation>,
    /// 1-based line in the `.traces` file.
    pub line: usize,
}

/// One named trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub name: String,
    pub expect: Expect,
    pub steps: Vec<Step>,
    /// 1-based line of the header.
    pub line: usize,
}

impl Trace {
    /// The calls, for [`interp::run_trace`] and other judges.
    pub fn events(&self) -> Vec<TraceEvent> {
        self.steps.iter().map(|s| s.call.clone()).collect()
    }
}

/// A parsed `.traces` file.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceFile {
    /// Extra policy files from `with` lines, as written (relative to the `.traces` file).
    pub with: Vec<String>,
    pub traces: Vec<Trace>,
}

/// A located error in a `.traces` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// The offending source line, for the caret display.
    pub source_line: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.col, self.message
        )?;
        let gutter = self.line.to_string().len();
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.line, self.source_line)?;
        let pad: String = self
            .source_line
            .chars()
            .take(self.col.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "{:gutter$} | {pad}^", "")
    }
}

impl std::error::Error for TraceError {}

/// Why a `.traces` file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum TraceFileError {
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no policy `{}` next to `{}`", policy.display(), traces.display())]
    MissingPolicy { traces: PathBuf, policy: PathBuf },
    #[error("{0}")]
    Parse(TraceError),
    #[error("the policies of `{}` do not compile:\n{}", traces.display(), diagnostics.render())]
    Compile {
        traces: PathBuf,
        diagnostics: crate::Diagnostics,
    },
}

// ---- lexer --------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Int(i64),
    Str(Vec<u8>),
    /// Punctuation, including the two-character `-> => << >>`.
    P(&'static str),
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Int(v) => write!(f, "`{v}`"),
            Tok::Str(_) => write!(f, "a string"),
            Tok::P(p) => write!(f, "`{p}`"),
            Tok::Eof => write!(f, "the end of the file"),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    /// Byte offset in the text.
    pos: usize,
}

const PUNCT2: [&str; 4] = ["->", "=>", "<<", ">>"];
const PUNCT1: [&str; 14] = [
    "(", ")", "{", "}", ",", "=", ";", "|", "&", "^", "+", "-", "*", "~",
];

struct Lexer<'a> {
    text: &'a str,
    file: &'a str,
}

impl<'a> Lexer<'a> {
    fn error(&self, pos: usize, message: impl Into<String>) -> TraceError {
        locate(self.file, self.text, pos, message.into())
    }

    fn tokens(&self) -> Result<Vec<Token>, TraceError> {
        let b = self.text.as_bytes();
        let mut i = 0;
        let mut out = Vec::new();
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_whitespace() {
                i += 1;
            } else if b[i..].starts_with(b"//") {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            } else if b[i..].starts_with(b"/*") {
                let start = i;
                match self.text[i + 2..].find("*/") {
                    Some(end) => i += 2 + end + 2,
                    None => return Err(self.error(start, "unterminated block comment")),
                }
            } else if c.is_ascii_alphabetic() || c == b'_' {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Ident(self.text[start..i].to_string()),
                    pos: start,
                });
            } else if c.is_ascii_digit() {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let lit = self.text[start..i].replace('_', "");
                let parsed = match lit.strip_prefix("0x").or_else(|| lit.strip_prefix("0X")) {
                    Some(hex) => u64::from_str_radix(hex, 16).map(|v| v as i64),
                    None => lit.parse::<u64>().map(|v| v as i64),
                };
                match parsed {
                    Ok(v) => out.push(Token {
                        tok: Tok::Int(v),
                        pos: start,
                    }),
                    Err(_) => {
                        return Err(self.error(
                            start,
                            format!("`{}` is not a valid integer", &self.text[start..i]),
                        ))
                    }
                }
            } else if c == b'"' {
                let (bytes, end) = self.string(i)?;
                out.push(Token {
                    tok: Tok::Str(bytes),
                    pos: i,
                });
                i = end;
            } else if let Some(p) = PUNCT2.iter().find(|p| b[i..].starts_with(p.as_bytes())) {
                out.push(Token {
                    tok: Tok::P(p),
                    pos: i,
                });
                i += 2;
            } else if let Some(p) = PUNCT1.iter().find(|p| b[i..].starts_with(p.as_bytes())) {
                out.push(Token {
                    tok: Tok::P(p),
                    pos: i,
                });
                i += 1;
            } else {
                let ch = self.text[i..].chars().next().unwrap_or('?');
                return Err(self.error(i, format!("unexpected character `{ch}`")));
            }
        }
        out.push(Token {
            tok: Tok::Eof,
            pos: b.len(),
        });
        Ok(out)
    }

    /// A quoted string starting at `start`; returns its bytes and the offset after it.
    fn string(&self, start: usize) -> Result<(Vec<u8>, usize), TraceError> {
        let b = self.text.as_bytes();
        let mut out = Vec::new();
        let mut i = start + 1;
        loop {
            match b.get(i) {
                None | Some(b'\n') => return Err(self.error(start, "unterminated string")),
                Some(b'"') => return Ok((out, i + 1)),
                Some(b'\\') => {
                    let esc = b.get(i + 1).copied();
                    let simple = match esc {
                        Some(b'"') => Some(b'"'),
                        Some(b'\\') => Some(b'\\'),
                        Some(b'n') => Some(b'\n'),
                        Some(b't') => Some(b'\t'),
                        Some(b'r') => Some(b'\r'),
                        Some(b'0') => Some(0),
                        _ => None,
                    };
                    if let Some(v) = simple {
                        out.push(v);
                        i += 2;
                    } else if esc == Some(b'x') {
                        let hex = self.text.get(i + 2..i + 4).unwrap_or("");
                        match u8::from_str_radix(hex, 16) {
                            Ok(v) if hex.len() == 2 => {
                                out.push(v);
                                i += 4;
                            }
                            _ => return Err(self.error(i, "`\\x` needs two hexadecimal digits")),
                        }
                    } else {
                        return Err(
                            self.error(i, "unknown escape; use \\\" \\\\ \\n \\t \\r \\0 or \\xNN")
                        );
                    }
                }
                Some(_) => {
                    // Copy one whole UTF-8 character.
                    let ch = self.text[i..].chars().next().unwrap_or('\u{fffd}');
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    i += ch.len_utf8();
                }
            }
        }
    }
}

fn locate(file: &str, text: &str, pos: usize, message: String) -> TraceError {
    let pos = pos.min(text.len());
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..pos].chars().count() + 1;
    let source_line = text[line_start..].lines().next().unwrap_or("").to_string();
    TraceError {
        file: file.to_string(),
        line,
        col,
        message,
        source_line,
    }
}

// ---- parser -------------------------------------------------------------------------

/// Resolves a named constant in a trace (built-in WASI constants, user constants).
pub type Constants<'a> = &'a dyn Fn(&str) -> Option<i64>;

struct Parser<'a> {
    file: &'a str,
    text: &'a str,
    toks: Vec<Token>,
    i: usize,
    /// Empty while only the `with` header is read.
    program: &'a Program,
    consts: Constants<'a>,
    /// Current nesting of [`Parser::unary`].
    depth: usize,
}

type PResult<T> = Result<T, TraceError>;

/// Deepest nesting of parentheses and prefix operators in a value, so that hostile
/// trace files cannot exhaust the stack of the recursive parser.
const MAX_CONST_NESTING: usize = 64;

impl<'a> Parser<'a> {
    fn new(
        file: &'a str,
        text: &'a str,
        program: &'a Program,
        consts: Constants<'a>,
    ) -> PResult<Self> {
        let toks = Lexer { text, file }.tokens()?;
        Ok(Parser {
            file,
            text,
            toks,
            i: 0,
            program,
            consts,
            depth: 0,
        })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.i].pos
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> TraceError {
        locate(self.file, self.text, pos, message.into())
    }

    fn unexpected(&self, wanted: &str) -> TraceError {
        self.error_at(
            self.pos(),
            format!("expected {wanted}, found {}", self.peek()),
        )
    }

    fn line_of(&self, pos: usize) -> usize {
        self.text[..pos.min(self.text.len())].matches('\n').count() + 1
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::P(q) if *q == p)
    }

    fn is_keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == k)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        let hit = self.is_punct(p);
        if hit {
            self.bump();
        }
        hit
    }

    fn eat_keyword(&mut self, k: &str) -> bool {
        let hit = self.is_keyword(k);
        if hit {
            self.bump();
        }
        hit
    }

    fn expect_punct(&mut self, p: &str) -> PResult<()> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{p}`")))
        }
    }

    fn ident(&mut self, what: &str) -> PResult<(String, usize)> {
        match self.peek().clone() {
            Tok::Ident(s) => Ok((s, self.bump().pos)),
            _ => Err(self.unexpected(what)),
        }
    }

    fn string(&mut self, what: &str) -> PResult<String> {
        match self.peek().clone() {
            Tok::Str(bytes) => {
                let pos = self.bump().pos;
                String::from_utf8(bytes)
                    .map_err(|_| self.error_at(pos, format!("{what} must be valid UTF-8")))
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn opt_string(&mut self) -> PResult<Option<String>> {
        if matches!(self.peek(), Tok::Str(_)) {
            self.string("a string").map(Some)
        } else {
            Ok(None)
        }
    }

    /// `with "file.pol";` lines at the top of the file.
    fn with_lines(&mut self) -> PResult<Vec<String>> {
        let mut out = Vec::new();
        while self.eat_keyword("with") {
            out.push(self.string("a quoted policy file name after `with`")?);
            self.eat_punct(";");
        }
        Ok(out)
    }

    fn file(&mut self) -> PResult<TraceFile> {
        let with = self.with_lines()?;
        let mut traces = Vec::new();
        let mut names: Vec<String> = Vec::new();
        while *self.peek() != Tok::Eof {
            let header_pos = self.pos();
            let trace = self.trace()?;
            if names.contains(&trace.name) {
                return Err(self.error_at(
                    header_pos,
                    format!(
                        "a trace named \"{}\" already exists in this file",
                        trace.name
                    ),
                ));
            }
            names.push(trace.name.clone());
            traces.push(trace);
        }
        Ok(TraceFile { with, traces })
    }

    fn trace(&mut self) -> PResult<Trace> {
        let start = self.pos();
        let line = self.line_of(start);
        let expect_accept = if self.eat_keyword("accept") {
            true
        } else if self.eat_keyword("reject") {
            false
        } else if self.is_keyword("with") {
            return Err(self.error_at(start, "`with` lines must come before the first trace"));
        } else {
            return Err(self.unexpected("`accept` or `reject`"));
        };
        let name = self.string("the trace's name in quotes")?;
        let expect = if expect_accept {
            Expect::Accept
        } else {
            if !self.eat_keyword("at") {
                return Err(self.unexpected("`at STEP` (the 1-based step of the first deny)"));
            }
            let step_pos = self.pos();
            let step = match self.bump().tok {
                Tok::Int(v) if v >= 1 => v as usize,
                _ => return Err(self.error_at(step_pos, "expected a step number (1 or more)")),
            };
            if !self.eat_keyword("by") {
                return Err(self.unexpected("`by POLICY`"));
            }
            let (policy, ppos) = self.ident("the denying policy's name")?;
            self.check_policy(&policy, ppos)?;
            let reason = self.opt_string()?;
            Expect::Reject {
                step,
                policy,
                reason,
            }
        };
        self.expect_punct("{")?;
        let mut steps = Vec::new();
        while !self.eat_punct("}") {
            if *self.peek() == Tok::Eof {
                return Err(self.error_at(start, "this trace's `{` is never closed"));
            }
            steps.push(self.step()?);
            self.eat_punct(";");
        }
        if let Expect::Reject { step, .. } = &expect {
            if *step > steps.len() {
                return Err(self.error_at(
                    start,
                    format!(
                        "the trace expects a deny at step {step} but has only {} steps",
                        steps.len()
                    ),
                ));
            }
        }
        Ok(Trace {
            name,
            expect,
            steps,
            line,
        })
    }

    fn check_policy(&self, name: &str, pos: usize) -> PResult<()> {
        let program = self.program;
        if program.policies.iter().any(|p| p.name == name) {
            return Ok(());
        }
        let names: Vec<&str> = program.policies.iter().map(|p| p.name.as_str()).collect();
        let hint = match suggest(name, names.iter().copied()) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!(" (policies: {})", names.join(", ")),
        };
        Err(self.error_at(pos, format!("no policy named `{name}`{hint}")))
    }

    fn resolve_event(&self, name: &str, pos: usize) -> PResult<(EventId, &'a Event)> {
        let program = self.program;
        let found = program
            .events
            .iter()
            .position(|e| e.name == name)
            .or_else(|| {
                let mut by_field = program
                    .events
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.field == name);
                match (by_field.next(), by_field.next()) {
                    (Some((i, _)), None) => Some(i),
                    _ => None,
                }
            });
        match found {
            Some(i) => Ok((i as EventId, &program.events[i])),
            None => {
                let names: Vec<&str> = program.events.iter().map(|e| e.name.as_str()).collect();
                let hint = match suggest(name, names.iter().copied()) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => format!(" (the policies monitor: {})", names.join(", ")),
                };
                Err(self.error_at(pos, format!("unknown event `{name}`{hint}")))
            }
        }
    }

    fn step(&mut self) -> PResult<Step> {
        let (name, pos) = self.ident("an event call such as `fd_write(fd=1)`, or `}`")?;
        let line = self.line_of(pos);
        let (event, decl) = self.resolve_event(&name, pos)?;
        let mut args: Vec<Value> = decl
            .params
            .iter()
            .map(|p| match p.ty {
                ParamType::I32 | ParamType::I64 => Value::Int(0),
                ParamType::F32 | ParamType::F64 => Value::Float(0.0),
                ParamType::Str => Value::Str(Some(Vec::new())),
            })
            .collect();
        let mut given = vec![false; args.len()];
        self.expect_punct("(")?;
        while !self.eat_punct(")") {
            let (pname, ppos) = self.ident("a parameter name or `)`")?;
            let Some(index) = decl.params.iter().position(|p| p.name == pname) else {
                let names: Vec<&str> = decl.params.iter().map(|p| p.name.as_str()).collect();
                let hint = match suggest(&pname, names.iter().copied()) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None if names.is_empty() => " (it has no parameters)".to_string(),
                    None => format!(" (its parameters: {})", names.join(", ")),
                };
                return Err(
                    self.error_at(ppos, format!("`{name}` has no parameter `{pname}`{hint}"))
                );
            };
            if given[index] {
                return Err(self.error_at(ppos, format!("parameter `{pname}` is given twice")));
            }
            given[index] = true;
            self.expect_punct("=")?;
            let vpos = self.pos();
            args[index] = match decl.params[index].ty {
                ParamType::Str => match self.peek().clone() {
                    Tok::Str(bytes) => {
                        self.bump();
                        Value::Str(Some(bytes))
                    }
                    Tok::Ident(k) if k == "oob" => {
                        self.bump();
                        Value::Str(None)
                    }
                    _ => {
                        return Err(self.error_at(
                            vpos,
                            format!("`{pname}` is a string: give a quoted string or `oob`"),
                        ))
                    }
                },
                ParamType::F32 | ParamType::F64 => Value::Float(self.const_expr()? as f64),
                ParamType::I32 | ParamType::I64 => {
                    if matches!(self.peek(), Tok::Str(_)) {
                        return Err(
                            self.error_at(vpos, format!("`{pname}` is an integer, not a string"))
                        );
                    }
                    Value::Int(self.const_expr()?)
                }
            };
            if !self.eat_punct(",") && !self.is_punct(")") {
                return Err(self.unexpected("`,` or `)`"));
            }
        }
        let mut result = None;
        if self.is_punct("->") {
            let apos = self.bump().pos;
            if decl.results.is_empty() {
                return Err(self.error_at(
                    apos,
                    format!("`{name}` returns nothing, so it takes no `-> RESULT`"),
                ));
            }
            result = Some(self.const_expr()?);
        }
        let mut expect = Vec::new();
        if self.eat_punct("=>") {
            loop {
                expect.push(self.expectation()?);
                if !self.eat_punct(",") {
                    break;
                }
            }
        }
        Ok(Step {
            call: TraceEvent {
                event,
                args,
                result,
            },
            expect,
            line,
        })
    }

    fn expectation(&mut self) -> PResult<Expectation> {
        let kind = if self.eat_keyword("audit") {
            ExpectKind::Audit
        } else if self.eat_keyword("suppress") {
            // A value is optional; an identifier that opens the next step is not one.
            let starts_value = match self.peek() {
                Tok::Int(_) => true,
                Tok::P(p) => ["(", "-", "~"].contains(p),
                Tok::Ident(k) => k != "by" && *self.peek_at(1) != Tok::P("("),
                _ => false,
            };
            ExpectKind::Suppress(if starts_value {
                Some(self.const_expr()?)
            } else {
                None
            })
        } else {
            return Err(self.unexpected("`audit` or `suppress`"));
        };
        let reason = self.opt_string()?;
        let policy = if self.eat_keyword("by") {
            let (p, pos) = self.ident("a policy name")?;
            self.check_policy(&p, pos)?;
            Some(p)
        } else {
            None
        };
        Ok(Expectation {
            kind,
            reason,
            policy,
        })
    }

    // Constant expressions, C precedence: | ^ & << >> + - * unary.
    fn const_expr(&mut self) -> PResult<i64> {
        self.binary(0)
    }

    fn binary(&mut self, level: usize) -> PResult<i64> {
        const LEVELS: [&[&str]; 5] = [&["|"], &["^"], &["&"], &["<<", ">>"], &["+", "-"]];
        if level == LEVELS.len() {
            return self.product();
        }
        let mut acc = self.binary(level + 1)?;
        while let Tok::P(p) = self.peek().clone() {
            if !LEVELS[level].contains(&p) {
                break;
            }
            self.bump();
            let rhs = self.binary(level + 1)?;
            acc = match p {
                "|" => acc | rhs,
                "^" => acc ^ rhs,
                "&" => acc & rhs,
                "<<" => acc.wrapping_shl((rhs & 63) as u32),
                ">>" => acc.wrapping_shr((rhs & 63) as u32),
                "+" => acc.wrapping_add(rhs),
                _ => acc.wrapping_sub(rhs),
            };
        }
        Ok(acc)
    }

    fn product(&mut self) -> PResult<i64> {
        let mut acc = self.unary()?;
        while self.eat_punct("*") {
            acc = acc.wrapping_mul(self.unary()?);
        }
        Ok(acc)
    }

    fn unary(&mut self) -> PResult<i64> {
        self.depth += 1;
        let v = if self.depth > MAX_CONST_NESTING {
            Err(self.error_at(
                self.pos(),
                format!(
                    "nesting too deep: at most {MAX_CONST_NESTING} parentheses or prefix operators"
                ),
            ))
        } else {
            self.unary_inner()
        };
        self.depth -= 1;
        v
    }

    fn unary_inner(&mut self) -> PResult<i64> {
        if self.eat_punct("-") {
            return Ok(self.unary()?.wrapping_neg());
        }
        if self.eat_punct("~") {
            return Ok(!self.unary()?);
        }
        if self.eat_punct("(") {
            let v = self.const_expr()?;
            self.expect_punct(")")?;
            return Ok(v);
        }
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Int(v) => {
                self.bump();
                Ok(v)
            }
            Tok::Ident(name) => {
                self.bump();
                (self.consts)(&name).ok_or_else(|| {
                    let known: Vec<String> = crate::wasi::constants().map(|(n, _)| n).collect();
                    let hint = suggest(&name, known.iter().map(String::as_str))
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    self.error_at(pos, format!("unknown constant `{name}`{hint}"))
                })
            }
            _ => Err(self.unexpected("an integer or a constant")),
        }
    }
}

/// The `with` files named at the top of a `.traces` file.
pub fn parse_with_lines(file: &str, text: &str) -> Result<Vec<String>, TraceError> {
    let none = |_: &str| None;
    let empty = Program {
        version: crate::ir::IR_VERSION,
        events: vec![],
        policies: vec![],
    };
    Parser::new(file, text, &empty, &none)?.with_lines()
}

/// Parses a `.traces` file against the compiled program it tests.
pub fn parse_traces(
    file: &str,
    text: &str,
    program: &Program,
    consts: Constants<'_>,
) -> Result<TraceFile, TraceError> {
    Parser::new(file, text, program, consts)?.file()
}

/// The built-in WASI constants.
pub fn wasi_constants(name: &str) -> Option<i64> {
    crate::wasi::constant(name)
}

// ---- judging ------------------------------------------------------------------------

/// Decides traces: the reference interpreter, a woven module, the host-side monitor...
pub trait Judge {
    /// Shown in failure messages, e.g. `interpreter`.
    fn name(&self) -> &str;
    /// The verdict on `trace`, or why it could not be obtained.
    fn judge(&self, program: &Program, trace: &Trace) -> Result<Verdict, String>;
}

/// The reference interpreter as a [`Judge`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Interpreter;

impl Judge for Interpreter {
    fn name(&self) -> &str {
        "interpreter"
    }

    fn judge(&self, program: &Program, trace: &Trace) -> Result<Verdict, String> {
        Ok(interp::run_trace(program, &trace.events()))
    }
}

fn show_expect(e: &Expect) -> String {
    match e {
        Expect::Accept => "accept".into(),
        Expect::Reject {
            step,
            policy,
            reason,
        } => match reason {
            Some(r) => format!("deny at step {step} by {policy} {r:?}"),
            None => format!("deny at step {step} by {policy}"),
        },
    }
}

fn show_verdict(program: &Program, trace: &Trace, v: &Verdict) -> String {
    match &v.violation {
        None => "accept".into(),
        Some(x) => {
            let event = trace
                .steps
                .get(x.step - 1)
                .and_then(|s| program.events.get(s.call.event as usize))
                .map_or("?", |e| e.name.as_str());
            let phase = match x.phase {
                crate::ir::Phase::Pre => "",
                crate::ir::Phase::Post => " (after the call)",
            };
            format!(
                "deny at step {} ({event}){phase} by {} {:?}",
                x.step, x.policy, x.reason
            )
        }
    }
}

fn show_observation(o: &interp::Observation) -> String {
    match o.kind {
        ObservationKind::Audit => format!("audit {:?} by {}", o.reason, o.policy),
        ObservationKind::Suppress(Some(v)) => {
            format!("suppress {v} {:?} by {}", o.reason, o.policy)
        }
        ObservationKind::Suppress(None) => format!("suppress {:?} by {}", o.reason, o.policy),
    }
}

fn show_expectation(e: &Expectation) -> String {
    let mut s = match e.kind {
        ExpectKind::Audit => "audit".to_string(),
        ExpectKind::Suppress(Some(v)) => format!("suppress {v}"),
        ExpectKind::Suppress(None) => "suppress".to_string(),
    };
    if let Some(r) = &e.reason {
        s += &format!(" {r:?}");
    }
    if let Some(p) = &e.policy {
        s += &format!(" by {p}");
    }
    s
}

fn matches_expectation(e: &Expectation, o: &interp::Observation) -> bool {
    let kind_ok = match (&e.kind, &o.kind) {
        (ExpectKind::Audit, ObservationKind::Audit) => true,
        (ExpectKind::Suppress(None), ObservationKind::Suppress(_)) => true,
        (ExpectKind::Suppress(Some(want)), ObservationKind::Suppress(Some(got))) => want == got,
        _ => false,
    };
    kind_ok
        && e.reason.as_ref().is_none_or(|r| *r == o.reason)
        && e.policy.as_ref().is_none_or(|p| *p == o.policy)
}

/// Compares a verdict with what `trace` expects; `Err` describes every difference.
pub fn check(program: &Program, trace: &Trace, verdict: &Verdict) -> Result<(), String> {
    let mut diffs = Vec::new();
    let overall_ok = match (&trace.expect, &verdict.violation) {
        (Expect::Accept, None) => true,
        (
            Expect::Reject {
                step,
                policy,
                reason,
            },
            Some(v),
        ) => {
            v.step == *step && v.policy == *policy && reason.as_ref().is_none_or(|r| *r == v.reason)
        }
        _ => false,
    };
    if !overall_ok {
        diffs.push(format!(
            "expected {}\n     got {}",
            show_expect(&trace.expect),
            show_verdict(program, trace, verdict)
        ));
    }
    // Steps that ran: all of them, or up to the violation.
    let ran = verdict
        .violation
        .as_ref()
        .map_or(trace.steps.len(), |v| v.step);
    for (i, step) in trace.steps.iter().enumerate().take(ran) {
        let n = i + 1;
        let got: Vec<&interp::Observation> = verdict
            .observations
            .iter()
            .filter(|o| o.step == n)
            .collect();
        let same = got.len() == step.expect.len()
            && step
                .expect
                .iter()
                .zip(&got)
                .all(|(e, o)| matches_expectation(e, o));
        if !same {
            let want = if step.expect.is_empty() {
                "nothing".to_string()
            } else {
                step.expect
                    .iter()
                    .map(show_expectation)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let have = if got.is_empty() {
                "nothing".to_string()
            } else {
                got.iter()
                    .map(|o| show_observation(o))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            diffs.push(format!(
                "step {n} (line {}): expected {want}\n     got {have}",
                step.line
            ));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}

/// The outcome of one trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceResult {
    pub name: String,
    /// 1-based line of the trace's header.
    pub line: usize,
    /// `None`: passed; otherwise the difference, expected vs actual.
    pub failure: Option<String>,
}

impl TraceResult {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// A `.traces` file with its compiled policies, ready to run.
#[derive(Debug)]
pub struct LoadedTraces {
    pub traces_path: PathBuf,
    /// The matching `.pol` first, then the `with` files.
    pub policy_paths: Vec<PathBuf>,
    pub compiled: crate::Compiled,
    pub file: TraceFile,
}

/// Reads `path` (a `.traces` file), compiles its `.pol` and `with` files, and parses it.
pub fn load_trace_file(path: &Path) -> Result<LoadedTraces, TraceFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TraceFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let shown = path.to_string_lossy();
    let with = parse_with_lines(&shown, &text).map_err(TraceFileError::Parse)?;
    let policy = path.with_extension("pol");
    if !policy.is_file() {
        return Err(TraceFileError::MissingPolicy {
            traces: path.to_path_buf(),
            policy,
        });
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut policy_paths = vec![policy];
    policy_paths.extend(with.iter().map(|w| dir.join(w)));
    let compiled =
        crate::compile_files(&policy_paths).map_err(|diagnostics| TraceFileError::Compile {
            traces: path.to_path_buf(),
            diagnostics,
        })?;
    let file = parse_traces(&shown, &text, &compiled.program, &wasi_constants)
        .map_err(TraceFileError::Parse)?;
    Ok(LoadedTraces {
        traces_path: path.to_path_buf(),
        policy_paths,
        compiled,
        file,
    })
}

/// Runs every trace of a loaded file through `judge` and checks it.
pub fn run_loaded(loaded: &LoadedTraces, judge: &dyn Judge) -> Vec<TraceResult> {
    let program = &loaded.compiled.program;
    loaded
        .file
        .traces
        .iter()
        .map(|t| {
            let failure = match judge.judge(program, t) {
                Ok(v) => check(program, t, &v).err(),
                Err(e) => Some(format!("{} could not judge the trace: {e}", judge.name())),
            };
            TraceResult {
                name: t.name.clone(),
                line: t.line,
                failure,
            }
        })
        .collect()
}

/// Loads `path` and runs every trace in it through the reference interpreter.
pub fn run_trace_file(path: &Path) -> Result<Vec<TraceResult>, TraceFileError> {
    Ok(run_loaded(&load_trace_file(path)?, &Interpreter))
}
