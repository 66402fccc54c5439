//! Reading `.traces` text into a [`TraceFile`], in two stages: [`parse_text`] checks the
//! syntax (pest, `trace.pest`) and yields the `with` files; once the policies are
//! compiled, [`ParsedText::resolve`] decodes literals, evaluates constant expressions and
//! resolves events, parameters and policies against the program under test. The first
//! mistake is a [`TraceError`], a [`Diagnostic`] like the policy compiler's.
//!
//! Unterminated strings and comments, and nesting too deep for a recursive parser, are
//! found by the policy parser's own scanners ([`crate::parse`]): the two formats share
//! their lexical rules.
use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::pratt_parser::PrattParser;
use pest::Parser as _;

use super::{Expect, ExpectKind, Expectation, Step, Trace, TraceFile};
use crate::ast::Span;
use crate::descriptors::{
    Effect, Opened, FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE, FILETYPE_SOCKET_STREAM,
};
use crate::diag::{suggest, Diagnostic, LineIndex, Severity, Source};
use crate::interp::{TraceEvent, Value, World};
use crate::ir::{BinOp, Event, EventId, ParamType, Program};

#[derive(pest_derive::Parser)]
#[grammar = "trace/trace.pest"]
struct TraceParser;

/// A located error in a `.traces` file, rendered like the compiler's diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError(Box<(Diagnostic, Source)>);

impl TraceError {
    fn new(file: &str, text: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        let source = Source {
            name: file.to_string(),
            text: text.to_string(),
        };
        let span = Span {
            file: 0,
            start: span.start,
            end: span.end,
        };
        let d = Diagnostic::at(
            Severity::Error,
            std::slice::from_ref(&source),
            span,
            message,
        );
        TraceError(Box::new((d, source)))
    }

    /// The message and its location.
    pub fn diagnostic(&self) -> &Diagnostic {
        &self.0 .0
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, source) = &*self.0;
        f.write_str(d.render(std::slice::from_ref(source)).trim_end())
    }
}

impl std::error::Error for TraceError {}

/// Resolves a named constant in a trace (built-in WASI constants, user constants).
pub type Constants<'a> = &'a dyn Fn(&str) -> Option<i64>;

/// The built-in WASI constants.
pub fn wasi_constants(name: &str) -> Option<i64> {
    crate::wasi::constant(name)
}

/// A syntactically valid `.traces` text, not yet resolved against a program.
pub struct ParsedText<'a> {
    file: &'a str,
    text: &'a str,
    pair: Pair<'a, Rule>,
}

/// Checks the syntax of `text`, named `file` in errors.
pub fn parse_text<'a>(file: &'a str, text: &'a str) -> Result<ParsedText<'a>, TraceError> {
    // pest's parser recurses on parentheses: refuse hostile nesting before it runs.
    if let Some(pos) = crate::parse::too_deep(text) {
        let max = crate::parse::MAX_NESTING;
        return Err(TraceError::new(
            file,
            text,
            pos..pos + 1,
            format!("nesting too deep: at most {max} parentheses or prefix operators"),
        ));
    }
    match TraceParser::parse(Rule::file, text) {
        Ok(mut pairs) => Ok(ParsedText {
            file,
            text,
            pair: pairs.next().expect("the file rule yields one pair"),
        }),
        // pest cannot tell an unterminated string or comment from other mistakes.
        Err(e) => Err(match crate::parse::unterminated(text) {
            Some((pos, len, message, _)) => TraceError::new(file, text, pos..pos + len, message),
            None => syntax_error(file, text, &e),
        }),
    }
}

impl ParsedText<'_> {
    /// The policy files of the `with` lines, which must come before the first trace.
    pub fn with_lines(&self) -> Result<Vec<String>, TraceError> {
        let empty = Program {
            version: crate::ir::IR_VERSION,
            events: vec![],
            policies: vec![],
        };
        Builder::new(self, &empty, &|_| None).with_lines(self.pair.clone())
    }

    /// The traces, their events, parameters, policies and constants resolved against
    /// `program`.
    pub fn resolve(
        &self,
        program: &Program,
        consts: Constants<'_>,
    ) -> Result<TraceFile, TraceError> {
        let b = Builder::new(self, program, consts);
        let with = b.with_lines(self.pair.clone())?;
        b.file(self.pair.clone(), with)
    }
}

/// The `with` files named at the top of a `.traces` file (see [`ParsedText::with_lines`]).
pub fn parse_with_lines(file: &str, text: &str) -> Result<Vec<String>, TraceError> {
    parse_text(file, text)?.with_lines()
}

/// Reads a `.traces` file against the compiled program it tests.
pub fn parse_traces(
    file: &str,
    text: &str,
    program: &Program,
    consts: Constants<'_>,
) -> Result<TraceFile, TraceError> {
    parse_text(file, text)?.resolve(program, consts)
}

/// What a grammar rule stands for in "expected ..." messages, or `None` for rules that
/// are summarised by others.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::semi => "`;`",
        Rule::comma => "`,`",
        Rule::eq => "`=`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::arrow => "`->`",
        Rule::fat_arrow => "`=>`",
        // The grammar takes a `with` line wherever a trace may start, so that a late one
        // gets its own message; where an error is, only a trace is offered.
        Rule::file | Rule::trace => "`accept` or `reject`",
        Rule::kw_accept | Rule::accept => "`accept`",
        Rule::kw_reject | Rule::reject => "`reject`",
        Rule::with_file => "a quoted policy file name after `with`",
        Rule::kw_preopen | Rule::preopen_line => "`preopen`",
        Rule::preopen_dir => "a quoted directory after `preopen`",
        Rule::trap => "`trap`",
        Rule::kw_opens | Rule::opens => "`opens`",
        Rule::opened_kind => "`file`, `dir` or `socket`",
        Rule::trace_name => "the trace's name in quotes",
        Rule::kw_at => "`at STEP` (the 1-based step of the first deny)",
        Rule::kw_by | Rule::by => "`by POLICY`",
        Rule::kw_audit | Rule::audit => "`audit`",
        Rule::kw_suppress | Rule::suppress => "`suppress`",
        Rule::step_number => "a step number (1 or more)",
        Rule::policy_name => "a policy name",
        Rule::step | Rule::event => "an event call such as `fd_write(fd=1)`",
        Rule::arg | Rule::param => "a parameter name",
        Rule::string => "a string",
        Rule::value => "a value",
        Rule::expr | Rule::paren | Rule::neg | Rule::bitnot | Rule::int | Rule::constant => {
            "an integer or a constant"
        }
        r if crate::parse::is_operator(r) => "an operator",
        _ => return None,
    })
}

fn syntax_error(file: &str, text: &str, e: &pest::error::Error<Rule>) -> TraceError {
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let token = crate::parse::token_at(text, pos);
    let span = pos..pos + token.len();
    // A character no token starts with is the mistake, whatever was expected.
    let stray = token.chars().next().filter(|&c| {
        !(c.is_ascii_alphanumeric() || c.is_whitespace() || "_\"(){},=;|&^+-*~<>/".contains(c))
    });
    if let Some(c) = stray {
        return TraceError::new(file, text, span, format!("unexpected character `{c}`"));
    }
    let found = match token {
        "" => "the end of the file".to_string(),
        "\"" => "a string".to_string(),
        t => format!("`{t}`"),
    };
    let mut expected: Vec<&str> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for d in positives.iter().filter_map(|r| describe(*r)) {
            if !expected.contains(&d) {
                expected.push(d);
            }
        }
    }
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        let expected = crate::parse::one_of(&expected);
        format!("expected {expected}, found {found}")
    };
    TraceError::new(file, text, span, message)
}

fn pratt() -> &'static PrattParser<Rule> {
    static P: OnceLock<PrattParser<Rule>> = OnceLock::new();
    use Rule::*;
    P.get_or_init(|| {
        crate::parse::c_precedence(
            &[
                &[bitor],
                &[bitxor],
                &[bitand],
                &[shl, shr],
                &[add, sub],
                &[mul],
            ],
            &[neg, bitnot],
        )
    })
}

type PResult<T> = Result<T, TraceError>;

/// `; did you mean `x`?` when one of `names` is close to `name`, else `otherwise(names)`.
fn hint(name: &str, names: &[&str], otherwise: impl FnOnce(&str) -> String) -> String {
    match suggest(name, names.iter().copied()) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => otherwise(&names.join(", ")),
    }
}

/// The child of `p` for `rule`, which the grammar guarantees.
fn child(p: Pair<'_, Rule>, rule: Rule) -> Pair<'_, Rule> {
    p.into_inner()
        .find(|q| q.as_rule() == rule)
        .unwrap_or_else(|| unreachable!("the grammar gives every such pair a {rule:?}"))
}

/// `a op b` for the operators of trace constants, with the IR's run-time semantics
/// (wrapping arithmetic, shift counts modulo 64): [`BinOp::apply`] is the one table.
fn int_op(op: BinOp, a: i64, b: i64) -> i64 {
    // Only division and remainder can fail, and a trace constant has neither.
    op.apply(a, b)
        .unwrap_or_else(|| unreachable!("{op:?} on integers always has a value"))
}

/// The file type of what `decl` hands out unless the trace says otherwise.
fn default_filetype(decl: &Event, args: &[Value]) -> u8 {
    if decl.field == "sock_accept" {
        return FILETYPE_SOCKET_STREAM;
    }
    let oflags = decl
        .params
        .iter()
        .position(|p| p.name == "oflags")
        .and_then(|i| match args.get(i) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        })
        .unwrap_or(0);
    let directory = crate::wasi::constant("OFLAGS_DIRECTORY").expect("a WASI constant");
    if oflags & directory != 0 {
        FILETYPE_DIRECTORY
    } else {
        FILETYPE_REGULAR_FILE
    }
}

/// Fills in what the host hands out where the trace does not say: the host of a trace
/// gives each successful `path_open` and `sock_accept` the lowest free descriptor from 3,
/// and frees and moves descriptors on successful `fd_close` and `fd_renumber`. A call that
/// trapped or was expected to be suppressed changes nothing.
fn host_hands_out(program: &Program, world: &World, steps: &mut [Step]) {
    let suppressed: Vec<bool> = steps
        .iter()
        .map(|s| {
            s.expect
                .iter()
                .any(|e| matches!(e.kind, ExpectKind::Suppress(_)))
        })
        .collect();
    let mut calls: Vec<TraceEvent> = steps.iter().map(|s| s.call.clone()).collect();
    hand_out(program, world, &mut calls, &|i| suppressed[i]);
    for (s, c) in steps.iter_mut().zip(calls) {
        s.call = c;
    }
}

/// The host model of traces (see [`super`]): sets `opened` of every successful
/// `path_open` and `sock_accept` of `calls` that does not say, and clears it where the
/// call failed, trapped or (by `suppressed`, given the call's index) never ran.
pub fn hand_out(
    program: &Program,
    world: &World,
    calls: &mut [TraceEvent],
    suppressed: &dyn Fn(usize) -> bool,
) {
    let mut open: BTreeSet<u32> = world.initial().iter().map(|d| d.fd).collect();
    for (i, call) in calls.iter_mut().enumerate() {
        let Some(decl) = program.events.get(call.event as usize) else {
            continue;
        };
        let effect = Effect::of_import(&decl.module, &decl.field);
        if call.trapped || suppressed(i) || call.result.unwrap_or(0) != 0 {
            // A call that failed or never ran hands out nothing.
            call.opened = None;
            continue;
        }
        let arg = |name: &str| {
            decl.params
                .iter()
                .position(|p| p.name == name)
                .and_then(|i| match call.args.get(i) {
                    Some(Value::Int(v)) => Some(*v as i32 as u32),
                    _ => None,
                })
        };
        match effect {
            Some(Effect::Open | Effect::Accept) => {
                let o = *call.opened.get_or_insert_with(|| Opened {
                    fd: (3..)
                        .find(|fd| !open.contains(fd))
                        .expect("a free descriptor"),
                    filetype: default_filetype(decl, &call.args),
                });
                open.insert(o.fd);
            }
            Some(Effect::Close) => {
                if let Some(fd) = arg("fd") {
                    open.remove(&fd);
                }
            }
            Some(Effect::Renumber) => {
                if let (Some(from), Some(to)) = (arg("fd"), arg("to")) {
                    if from != to && open.remove(&from) {
                        open.insert(to);
                    }
                }
            }
            // A component's handles are the trace's (`opens N`); without it `open-at`
            // failed and `get-directories` returned an empty list.
            Some(Effect::OpenAt | Effect::Preopens | Effect::Drop) | None => {}
        }
    }
}

/// Turns the pairs of one text into trace data, resolving names against `program`.
struct Builder<'a> {
    file: &'a str,
    text: &'a str,
    program: &'a Program,
    consts: Constants<'a>,
    lines: LineIndex,
}

impl<'a> Builder<'a> {
    fn new(parsed: &ParsedText<'a>, program: &'a Program, consts: Constants<'a>) -> Self {
        Builder {
            file: parsed.file,
            text: parsed.text,
            program,
            consts,
            lines: LineIndex::new(parsed.text),
        }
    }

    fn error(&self, span: Range<usize>, message: impl Into<String>) -> TraceError {
        TraceError::new(self.file, self.text, span, message)
    }

    /// An error at `p`.
    fn error_at(&self, p: &Pair<'_, Rule>, message: impl Into<String>) -> TraceError {
        self.error(p.as_span().start()..p.as_span().end(), message)
    }

    fn line_of(&self, p: &Pair<'_, Rule>) -> usize {
        self.lines.line_col(self.text, p.as_span().start()).0
    }

    fn with_lines(&self, file: Pair<'_, Rule>) -> PResult<Vec<String>> {
        let mut out = Vec::new();
        let mut seen_trace = false;
        for p in file.into_inner() {
            match p.as_rule() {
                Rule::trace => seen_trace = true,
                Rule::with_line if seen_trace => {
                    return Err(self.error_at(&p, "`with` lines must come before the first trace"))
                }
                Rule::with_line => {
                    let name = child(p, Rule::with_file);
                    out.push(self.text_of(&name, "a quoted policy file name after `with`")?);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The `preopen` lines among `pairs` (a file's, before its first trace, or a trace's).
    fn preopens<'p>(&self, pairs: impl Iterator<Item = Pair<'p, Rule>>) -> PResult<World> {
        let mut world = World::default();
        let mut seen_trace = false;
        for p in pairs {
            match p.as_rule() {
                Rule::trace => seen_trace = true,
                Rule::preopen_line if seen_trace => return Err(self.error_at(
                    &p,
                    "`preopen` lines must come before the first trace (or at the start of a trace)",
                )),
                Rule::preopen_line => {
                    let dir = child(p, Rule::preopen_dir);
                    let name = self.bytes(&dir)?;
                    if name.is_empty() || name.len() > crate::path::MAX_PATH {
                        return Err(self.error_at(
                            &dir,
                            format!("a preopen's name has 1 to {} bytes", crate::path::MAX_PATH),
                        ));
                    }
                    if world.preopens.len() >= 64 {
                        return Err(self.error_at(&dir, "a trace has at most 64 preopens"));
                    }
                    world.preopens.push(name);
                }
                _ => {}
            }
        }
        Ok(world)
    }

    fn file(&self, file: Pair<'_, Rule>, with: Vec<String>) -> PResult<TraceFile> {
        let mut traces: Vec<Trace> = Vec::new();
        let world = self.preopens(file.clone().into_inner())?;
        for p in file.into_inner().filter(|p| p.as_rule() == Rule::trace) {
            let header = p
                .clone()
                .into_inner()
                .next()
                .expect("a trace starts with its header");
            let trace = self.trace(p, &world)?;
            if traces.iter().any(|t| t.name == trace.name) {
                let name = &trace.name;
                return Err(self.error_at(
                    &header,
                    format!("a trace named \"{name}\" already exists in this file"),
                ));
            }
            traces.push(trace);
        }
        Ok(TraceFile { with, traces })
    }

    fn trace(&self, p: Pair<'_, Rule>, file_world: &World) -> PResult<Trace> {
        let own = p
            .clone()
            .into_inner()
            .any(|q| q.as_rule() == Rule::preopen_line);
        let world = if own {
            self.preopens(p.clone().into_inner())?
        } else {
            file_world.clone()
        };
        let mut inner = p.into_inner();
        let header = inner.next().expect("a trace starts with its header");
        let line = self.line_of(&header);
        let accept = header.as_rule() == Rule::accept;
        let (mut name, mut step, mut policy, mut reason) = (String::new(), 0, None, None);
        for q in header.clone().into_inner() {
            match q.as_rule() {
                Rule::trace_name => name = self.text_of(&q, "the trace's name in quotes")?,
                Rule::step_number => match self.int(&q)? {
                    v if v >= 1 => step = v as usize,
                    _ => return Err(self.error_at(&q, "expected a step number (1 or more)")),
                },
                Rule::policy_name => policy = Some(self.policy(&q)?),
                Rule::string => reason = Some(self.text_of(&q, "a string")?),
                _ => {}
            }
        }
        let mut steps = Vec::new();
        for q in inner {
            match q.as_rule() {
                Rule::step => steps.push(self.step(q)?),
                Rule::unclosed => {
                    return Err(self.error_at(&header, "this trace's `{` is never closed"))
                }
                _ => {}
            }
        }
        let expect = match policy {
            Some(policy) if !accept => Expect::Reject {
                step,
                policy,
                reason,
            },
            _ => Expect::Accept,
        };
        if step > steps.len() {
            let n = steps.len();
            return Err(self.error_at(
                &header,
                format!("the trace expects a deny at step {step} but has only {n} steps"),
            ));
        }
        host_hands_out(self.program, &world, &mut steps);
        Ok(Trace {
            name,
            expect,
            world,
            steps,
            line,
        })
    }

    fn policy(&self, p: &Pair<'_, Rule>) -> PResult<String> {
        let name = p.as_str();
        let names: Vec<&str> = self
            .program
            .policies
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        if names.contains(&name) {
            return Ok(name.to_string());
        }
        let hint = hint(name, &names, |all| format!(" (policies: {all})"));
        Err(self.error_at(p, format!("no policy named `{name}`{hint}")))
    }

    /// An event by its policy name, or by its import field when only one event has it.
    fn event(&self, p: &Pair<'_, Rule>) -> PResult<(EventId, &'a Event)> {
        let name = p.as_str();
        let events = &self.program.events;
        let found = events.iter().position(|e| e.name == name).or_else(|| {
            let mut by_field = events.iter().enumerate().filter(|(_, e)| e.field == name);
            match (by_field.next(), by_field.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        });
        if let Some(i) = found {
            return Ok((i as EventId, &events[i]));
        }
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        let hint = hint(name, &names, |all| {
            format!(" (the policies monitor: {all})")
        });
        Err(self.error_at(p, format!("unknown event `{name}`{hint}")))
    }

    fn step(&self, p: Pair<'_, Rule>) -> PResult<Step> {
        let mut inner = p.into_inner();
        let ident = inner.next().expect("a step starts with its event");
        let (event, decl) = self.event(&ident)?;
        let name = ident.as_str();
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
        let (mut result, mut expect) = (None, Vec::new());
        let (mut opened, mut trapped) = (None, false);
        for q in inner {
            match q.as_rule() {
                Rule::arg => {
                    let (index, value) = self.arg(name, decl, &given, q)?;
                    given[index] = true;
                    args[index] = value;
                }
                Rule::result if q.clone().into_inner().any(|r| r.as_rule() == Rule::trap) => {
                    trapped = true
                }
                Rule::result if decl.results.is_empty() => {
                    return Err(self.error_at(
                        &child(q, Rule::arrow),
                        format!("`{name}` returns nothing, so it takes no `-> RESULT`"),
                    ))
                }
                Rule::result => result = Some(self.expr(child(q, Rule::expr))?),
                Rule::opens => opened = Some(self.opened(name, decl, q)?),
                Rule::reports => {
                    for r in q.into_inner() {
                        if matches!(r.as_rule(), Rule::audit | Rule::suppress) {
                            expect.push(self.expectation(r)?);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Step {
            call: TraceEvent {
                event,
                args,
                result,
                opened,
                trapped,
            },
            expect,
            line: self.line_of(&ident),
        })
    }

    /// One `name=value` of a call to `event`: the parameter's index and its value.
    fn arg(
        &self,
        event: &str,
        decl: &Event,
        given: &[bool],
        p: Pair<'_, Rule>,
    ) -> PResult<(usize, Value)> {
        let mut inner = p.into_inner();
        let param = inner.next().expect("an argument starts with its parameter");
        let pname = param.as_str();
        let Some(index) = decl.params.iter().position(|p| p.name == pname) else {
            let names: Vec<&str> = decl.params.iter().map(|p| p.name.as_str()).collect();
            let hint = match names.as_slice() {
                [] => " (it has no parameters)".to_string(),
                _ => hint(pname, &names, |all| format!(" (its parameters: {all})")),
            };
            return Err(self.error_at(
                &param,
                format!("`{event}` has no parameter `{pname}`{hint}"),
            ));
        };
        if given[index] {
            return Err(self.error_at(&param, format!("parameter `{pname}` is given twice")));
        }
        let value = inner
            .find(|q| q.as_rule() == Rule::value)
            .expect("an argument has a value");
        let v = value
            .clone()
            .into_inner()
            .next()
            .expect("a value is a string or an expression");
        let is_string = v.as_rule() == Rule::string;
        let value = match decl.params[index].ty {
            ParamType::Str if is_string => Value::Str(Some(self.bytes(&v)?)),
            ParamType::Str if v.as_str() == "oob" => Value::Str(None),
            ParamType::Str => {
                return Err(self.error_at(
                    &value,
                    format!("`{pname}` is a string: give a quoted string or `oob`"),
                ))
            }
            ParamType::I32 | ParamType::I64 if v.as_str() == "oob" => Value::BadPointer(-1),
            ParamType::I32 | ParamType::I64 if is_string => {
                return Err(self.error_at(&value, format!("`{pname}` is an integer, not a string")))
            }
            _ if is_string => {
                return Err(self.error_at(&value, format!("`{pname}` is a number, not a string")))
            }
            ParamType::F32 | ParamType::F64 => Value::Float(self.expr(v)? as f64),
            ParamType::I32 | ParamType::I64 => Value::Int(self.expr(v)?),
        };
        Ok((index, value))
    }

    /// `opens [KIND] N` of a call to `event`.
    fn opened(&self, event: &str, decl: &Event, p: Pair<'_, Rule>) -> PResult<Opened> {
        let preview1 = matches!(
            Effect::of_import(&decl.module, &decl.field),
            Some(Effect::Open | Effect::Accept)
        );
        if !preview1 && !crate::handles::hands_out_behind_retptr(decl) {
            return Err(self.error_at(
                &p,
                format!("`{event}` hands out no descriptor; only `path_open`, `sock_accept`, `open-at`, `get-directories` and the component calls that return streams behind `retptr` take `opens`"),
            ));
        }
        let mut filetype = default_filetype(decl, &[]);
        let mut fd = 0;
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::opened_kind => {
                    filetype = match q.as_str() {
                        "dir" => FILETYPE_DIRECTORY,
                        "socket" => FILETYPE_SOCKET_STREAM,
                        _ => FILETYPE_REGULAR_FILE,
                    }
                }
                Rule::expr => {
                    let v = self.expr(q.clone())?;
                    fd = u32::try_from(v).map_err(|_| {
                        self.error_at(
                            &q,
                            format!("descriptor {v} is not a WASI descriptor number"),
                        )
                    })?;
                }
                _ => {}
            }
        }
        Ok(Opened { fd, filetype })
    }

    fn expectation(&self, p: Pair<'_, Rule>) -> PResult<Expectation> {
        let mut kind = match p.as_rule() {
            Rule::audit => ExpectKind::Audit,
            _ => ExpectKind::Suppress(None),
        };
        let (mut reason, mut policy) = (None, None);
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::expr => kind = ExpectKind::Suppress(Some(self.expr(q)?)),
                Rule::string => reason = Some(self.text_of(&q, "a string")?),
                Rule::by => policy = Some(self.policy(&child(q, Rule::policy_name))?),
                _ => {}
            }
        }
        Ok(Expectation {
            kind,
            reason,
            policy,
        })
    }

    /// The value of a constant expression.
    fn expr(&self, p: Pair<'_, Rule>) -> PResult<i64> {
        pratt()
            .map_primary(|q| match q.as_rule() {
                Rule::int => self.int(&q),
                Rule::paren => self.expr(child(q, Rule::expr)),
                _ => self.constant(&q),
            })
            .map_prefix(|op, v| match op.as_rule() {
                Rule::neg => v.map(i64::wrapping_neg),
                _ => v.map(|v| !v),
            })
            .map_infix(|a, op, b| {
                let op = match op.as_rule() {
                    Rule::bitor => BinOp::BitOr,
                    Rule::bitxor => BinOp::BitXor,
                    Rule::bitand => BinOp::BitAnd,
                    Rule::shl => BinOp::Shl,
                    Rule::shr => BinOp::Shr,
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    _ => BinOp::Mul,
                };
                Ok(int_op(op, a?, b?))
            })
            .parse(p.into_inner())
    }

    fn constant(&self, p: &Pair<'_, Rule>) -> PResult<i64> {
        let name = p.as_str();
        (self.consts)(name).ok_or_else(|| {
            let known: Vec<String> = crate::wasi::constants().map(|(n, _)| n).collect();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            let hint = hint(name, &known, |_| String::new());
            self.error_at(p, format!("unknown constant `{name}`{hint}"))
        })
    }

    /// A decimal or `0x` hexadecimal literal, `_` separators allowed; values above
    /// `i64::MAX` wrap, so `0xffffffffffffffff` is -1.
    fn int(&self, p: &Pair<'_, Rule>) -> PResult<i64> {
        let text = p.as_str();
        let lit = text.replace('_', "");
        let parsed = match lit.strip_prefix("0x").or_else(|| lit.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => lit.parse::<u64>(),
        };
        parsed
            .map(|v| v as i64)
            .map_err(|_| self.error_at(p, format!("`{text}` is not a valid integer")))
    }

    /// A string literal that must be UTF-8 (names, reasons, file names).
    fn text_of(&self, p: &Pair<'_, Rule>, what: &str) -> PResult<String> {
        String::from_utf8(self.bytes(p)?)
            .map_err(|_| self.error_at(p, format!("{what} must be valid UTF-8")))
    }

    /// The bytes of a string literal (a pair whose text is the quoted literal), escapes
    /// decoded.
    fn bytes(&self, p: &Pair<'_, Rule>) -> PResult<Vec<u8>> {
        let start = p.as_span().start() + 1; // after the opening quote
        let body = &p.as_str()[1..p.as_str().len() - 1];
        let b = body.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'\\' {
                // Up to the next escape: whole UTF-8 characters.
                let next = body[i..].find('\\').map_or(b.len(), |n| i + n);
                out.extend_from_slice(&b[i..next]);
                i = next;
                continue;
            }
            let escape = start + i..start + i + 2;
            let byte = match b.get(i + 1) {
                Some(b'"') => b'"',
                Some(b'\\') => b'\\',
                Some(b'n') => b'\n',
                Some(b't') => b'\t',
                Some(b'r') => b'\r',
                Some(b'0') => 0,
                Some(b'x') => {
                    let hex = body.get(i + 2..i + 4).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(v) if hex.len() == 2 => {
                            out.push(v);
                            i += 4;
                            continue;
                        }
                        _ => return Err(self.error(escape, "`\\x` needs two hexadecimal digits")),
                    }
                }
                _ => {
                    return Err(self.error(
                        escape,
                        "unknown escape; use \\\" \\\\ \\n \\t \\r \\0 or \\xNN",
                    ))
                }
            };
            out.push(byte);
            i += 2;
        }
        Ok(out)
    }
}
