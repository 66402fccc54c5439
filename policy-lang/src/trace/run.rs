//! Deciding traces: the [`Judge`] trait and the reference interpreter as one, comparing a
//! verdict with what its trace expects ([`check`]) and with another judge's
//! ([`disagreement`]), running a loaded file under several judges ([`run_loaded`]), and
//! the one printer of verdicts and results ([`Report`]) that `irm test` uses.
//!
//! Every judge produces the interpreter's [`Verdict`], so any two can be compared; the
//! first judge of a run is the reference the others must agree with.
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;

use super::{Expect, ExpectKind, Expectation, LoadedTraces, Trace, TraceFileError};
use crate::interp::{self, Observation, ObservationKind, TraceEvent, Verdict, Violation, World};
use crate::ir::{Phase, Program};

/// A judge's verdict, or why it reached none (which is not a verdict: a different one is).
pub type JudgeResult = Result<Verdict, Box<dyn std::error::Error + Send + Sync>>;

/// Decides traces: the reference interpreter ([`Interpreter`]); in `monitor-rt`, a woven
/// driver module and host enforcement.
pub trait Judge {
    /// Names the judge in reports, e.g. `interpreter`.
    fn name(&self) -> &str;
    /// Whether the judge decides traces of `program` at all (the component judges only
    /// judge policies on WASI 0.2 functions); one that does not is left out silently.
    fn applies(&self, _program: &Program) -> bool {
        true
    }
    /// The verdict on `trace`, calls of events of `program`, made in `world`. A judge
    /// that cannot replay this trace says why with a [`NotApplicable`] error: the trace
    /// is then reported as not run by that judge, which is no failure.
    fn judge(&self, program: &Program, world: &World, trace: &[TraceEvent]) -> JudgeResult;
}

/// Why a judge does not run a trace it cannot replay faithfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotApplicable(pub String);

impl fmt::Display for NotApplicable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotApplicable {}

/// The reference interpreter as a [`Judge`]; it always reaches a verdict.
#[derive(Clone, Copy, Debug, Default)]
pub struct Interpreter;

impl Judge for Interpreter {
    fn name(&self) -> &str {
        "interpreter"
    }

    fn judge(&self, program: &Program, world: &World, trace: &[TraceEvent]) -> JudgeResult {
        Ok(interp::run_trace_in(program, world, trace))
    }
}

// ---- comparing ----------------------------------------------------------------------

/// Whether an observation satisfies an expectation; unset parts match anything.
fn satisfies(o: &Observation, e: &Expectation) -> bool {
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

fn outcome_as_expected(expect: &Expect, violation: &Option<Violation>) -> bool {
    match (expect, violation) {
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
    }
}

/// Compares a verdict with what `trace` expects; `Err` describes every difference, one
/// `expected ...` / `got ...` pair per difference.
pub fn check(program: &Program, trace: &Trace, verdict: &Verdict) -> Result<(), String> {
    let mut diffs = Vec::new();
    if !outcome_as_expected(&trace.expect, &verdict.violation) {
        diffs.push(format!(
            "expected {}\n     got {}",
            show_expect(&trace.expect),
            show_outcome(program, &trace.events(), &verdict.violation)
        ));
    }
    // The steps that ran: all of them, or up to the violation.
    let ran = verdict
        .violation
        .as_ref()
        .map_or(trace.steps.len(), |v| v.step);
    for (i, step) in trace.steps.iter().enumerate().take(ran) {
        let n = i + 1;
        let got: Vec<&Observation> = verdict
            .observations
            .iter()
            .filter(|o| o.step == n)
            .collect();
        let same = got.len() == step.expect.len()
            && step.expect.iter().zip(&got).all(|(e, o)| satisfies(o, e));
        if !same {
            diffs.push(format!(
                "step {n} (line {}): expected {}\n     got {}",
                step.line,
                list(step.expect.iter().map(show_expectation)),
                list(got.iter().map(|o| show_observation(o)))
            ));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}

/// A verdict as a woven run can observe it: suppression values are what the caller
/// receives, so they are narrowed to the import's result type; the reason of a fault is
/// generated wording, so faults are compared by the fault itself (kind, parameter or
/// variable, value).
fn observable(program: &Program, trace: &[TraceEvent], v: &Verdict) -> Verdict {
    let mut v = v.clone();
    for o in &mut v.observations {
        if let ObservationKind::Suppress(Some(value)) = &mut o.kind {
            let event = trace
                .get(o.step - 1)
                .and_then(|c| program.events.get(c.event as usize));
            if let Some(e) = event {
                *value = e.narrow_result(*value);
            }
        }
    }
    if let Some(x) = &mut v.violation {
        if x.fault.is_some() {
            x.reason.clear();
        }
    }
    v
}

/// Where two verdicts on the same trace part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parting {
    /// They end the trace differently (accept, or deny at another step, phase, policy,
    /// reason or fault).
    Outcome,
    /// They report different audits or suppressions at this 1-based step.
    Step(usize),
}

/// `None` when two judges' verdicts on `trace` are the same as far as every judge can
/// observe them; otherwise where they part.
pub fn disagreement(
    program: &Program,
    trace: &[TraceEvent],
    a: &Verdict,
    b: &Verdict,
) -> Option<Parting> {
    let (a, b) = (observable(program, trace, a), observable(program, trace, b));
    if a.violation != b.violation {
        return Some(Parting::Outcome);
    }
    let by_step = |v: &Verdict| {
        let mut m: HashMap<usize, Vec<Observation>> = HashMap::new();
        for o in &v.observations {
            m.entry(o.step).or_default().push(o.clone());
        }
        m
    };
    let (a, b) = (by_step(&a), by_step(&b));
    let mut steps: Vec<usize> = a.keys().chain(b.keys()).copied().collect();
    steps.sort_unstable();
    steps.dedup();
    steps
        .into_iter()
        .find(|s| a.get(s) != b.get(s))
        .map(Parting::Step)
}

// ---- running ------------------------------------------------------------------------

/// What is wrong with one trace under a set of judges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The judge's verdict is not what the trace expects: [`check`]'s differences.
    Unexpected { judge: String, differences: String },
    /// The judge reached no verdict.
    NoVerdict { judge: String, error: String },
    /// The judge's verdict differs from the reference judge's; `verdicts` are both,
    /// printed, the reference's first.
    Disagreement {
        reference: String,
        judge: String,
        parting: Parting,
        verdicts: [String; 2],
    },
}

/// The outcome of one trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceResult {
    pub name: String,
    /// 1-based line of the trace's header.
    pub line: usize,
    /// Empty when the trace passed.
    pub problems: Vec<Problem>,
    /// (judge, why) of each judge that did not run the trace ([`NotApplicable`]).
    pub not_run: Vec<(String, String)>,
}

impl TraceResult {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Decides `trace` with every judge: each verdict must be what the trace expects, and
/// the verdicts of the judges after the first must equal the first's.
pub fn judge_trace(program: &Program, trace: &Trace, judges: &[&dyn Judge]) -> TraceResult {
    let events = trace.events();
    let mut problems = Vec::new();
    let mut not_run = Vec::new();
    let mut reference: Option<(&str, Verdict)> = None;
    for (i, judge) in judges.iter().enumerate() {
        let name = judge.name();
        if !judge.applies(program) {
            continue;
        }
        let verdict = match judge.judge(program, &trace.world, &events) {
            Ok(v) => v,
            Err(e) if e.downcast_ref::<NotApplicable>().is_some() => {
                not_run.push((name.to_string(), e.to_string()));
                continue;
            }
            Err(e) => {
                problems.push(Problem::NoVerdict {
                    judge: name.to_string(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        if let Err(differences) = check(program, trace, &verdict) {
            problems.push(Problem::Unexpected {
                judge: name.to_string(),
                differences,
            });
        }
        match &reference {
            Some((first, r)) => {
                if let Some(parting) = disagreement(program, &events, r, &verdict) {
                    problems.push(Problem::Disagreement {
                        reference: first.to_string(),
                        judge: name.to_string(),
                        parting,
                        verdicts: [
                            show_verdict(program, &events, r),
                            show_verdict(program, &events, &verdict),
                        ],
                    });
                }
            }
            None if i == 0 => reference = Some((name, verdict)),
            None => {}
        }
    }
    TraceResult {
        name: trace.name.clone(),
        line: trace.line,
        problems,
        not_run,
    }
}

/// Decides every trace of a loaded file with `judges` (see [`judge_trace`]).
pub fn run_loaded(loaded: &LoadedTraces, judges: &[&dyn Judge]) -> Vec<TraceResult> {
    let program = &loaded.compiled.program;
    loaded
        .file
        .traces
        .iter()
        .map(|t| judge_trace(program, t, judges))
        .collect()
}

// ---- printing -----------------------------------------------------------------------

/// `irm test`'s report: per file its path, per trace `ok` or `FAIL` with every problem
/// indented below it, and the totals. A file that cannot be run counts as one failure.
pub struct Report<W> {
    out: W,
    pub passed: usize,
    pub failed: usize,
    /// Traces some judge did not run ([`NotApplicable`]).
    pub not_run: usize,
}

impl<W: Write> Report<W> {
    pub fn new(out: W) -> Self {
        Report {
            out,
            passed: 0,
            failed: 0,
            not_run: 0,
        }
    }

    pub fn file(&mut self, path: &Path) -> io::Result<()> {
        writeln!(self.out, "{}", path.display())
    }

    pub fn unloadable(&mut self, error: &TraceFileError) -> io::Result<()> {
        self.failed += 1;
        writeln!(self.out, "  FAIL  the file could not be run:")?;
        writeln!(self.out, "{}", indent(&error.to_string()))
    }

    pub fn trace(&mut self, result: &TraceResult) -> io::Result<()> {
        if result.passed() {
            self.passed += 1;
            writeln!(self.out, "  ok    {}", result.name)?;
        } else {
            self.failed += 1;
            writeln!(self.out, "  FAIL  {} (line {})", result.name, result.line)?;
            for p in &result.problems {
                writeln!(self.out, "{}", indent(&p.to_string()))?;
            }
        }
        if !result.not_run.is_empty() {
            self.not_run += 1;
        }
        for (judge, why) in &result.not_run {
            writeln!(self.out, "        [{judge}] not run: {why}")?;
        }
        Ok(())
    }

    /// Prints how many traces some judge did not run, if any, then `N passed, M failed`.
    pub fn totals(&mut self) -> io::Result<()> {
        if self.not_run > 0 {
            writeln!(
                self.out,
                "{} traces were not run by every judge (each says why)",
                self.not_run
            )?;
        }
        writeln!(self.out, "{} passed, {} failed", self.passed, self.failed)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unexpected { judge, differences } => write!(f, "[{judge}]\n{differences}"),
            Problem::NoVerdict { judge, error } => {
                write!(f, "[{judge}] could not judge the trace: {error}")
            }
            Problem::Disagreement {
                reference,
                judge,
                parting,
                verdicts: [a, b],
            } => {
                let at = match parting {
                    Parting::Outcome => "on the outcome".to_string(),
                    Parting::Step(s) => format!("on what step {s} reports"),
                };
                let width = reference.len().max(judge.len()) + 1;
                write!(
                    f,
                    "[disagreement] {reference} and {judge} differ {at}\n  {:width$} {a}\n  {:width$} {b}",
                    format!("{reference}:"),
                    format!("{judge}:"),
                )
            }
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("        {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `nothing`, or the items separated by commas.
fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.join(", ")
    }
}

fn show_expect(e: &Expect) -> String {
    match e {
        Expect::Accept => "accept".into(),
        Expect::Reject {
            step,
            policy,
            reason: Some(r),
        } => format!("deny at step {step} by {policy} {r:?}"),
        Expect::Reject { step, policy, .. } => format!("deny at step {step} by {policy}"),
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

fn phase_note(phase: Phase) -> &'static str {
    match phase {
        Phase::Pre => "",
        Phase::Post => " (after the call)",
    }
}

/// `accept`, or `deny at step N (event) by POLICY "reason"`.
fn show_outcome(program: &Program, trace: &[TraceEvent], v: &Option<Violation>) -> String {
    let Some(x) = v else {
        return "accept".into();
    };
    let event = trace
        .get(x.step.wrapping_sub(1))
        .and_then(|c| program.events.get(c.event as usize))
        .map_or("?", |e| e.name.as_str());
    format!(
        "deny at step {} ({event}){} by {} {:?}",
        x.step,
        phase_note(x.phase),
        x.policy,
        x.reason
    )
}

fn show_observation(o: &Observation) -> String {
    let what = match o.kind {
        ObservationKind::Audit => "audit".to_string(),
        ObservationKind::Suppress(Some(v)) => format!("suppress {v}"),
        ObservationKind::Suppress(None) => "suppress".to_string(),
    };
    format!(
        "{what} {:?} by {}{}",
        o.reason,
        o.policy,
        phase_note(o.phase)
    )
}

/// A whole verdict on one line: the outcome, then every observation with its step.
fn show_verdict(program: &Program, trace: &[TraceEvent], v: &Verdict) -> String {
    let mut s = show_outcome(program, trace, &v.violation);
    for o in &v.observations {
        s += &format!("; step {}: {}", o.step, show_observation(o));
    }
    s
}
