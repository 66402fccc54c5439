//! Recording a run as a trace of `irm test`, so a real run becomes a trace test: the
//! observer collects what each monitored call did ([`RecordedStep`]), [`render`] turns
//! that into one trace and writes it with the format's own writer
//! ([`policy_lang::trace::write`]), so whatever is recorded parses back. The host judge
//! reads the same record to build its verdict.
use policy_lang::interp::{TraceEvent, Value, World};
use policy_lang::ir::{EventId, Phase, Program};
use policy_lang::trace::{self, Expect, ExpectKind, Expectation, Step, Trace, TraceFile};

/// What one recorded call reported.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StepNote {
    Audit {
        policy: usize,
        phase: Phase,
        reason: String,
    },
    Suppress {
        policy: usize,
        reason: String,
        value: Option<i64>,
    },
}

/// One monitored call of a run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RecordedStep {
    pub event: EventId,
    pub args: Vec<Value>,
    pub result: Option<i64>,
    /// The first handle a component call answering behind `retptr` handed out (a trace's
    /// `opens N`).
    pub opened: Option<u32>,
    pub notes: Vec<StepNote>,
}

/// How the recorded run ended, as far as the trace can say.
pub(crate) struct Ending<'a> {
    /// 1-based step and policy of the deny, with its reason.
    pub deny: Option<(usize, &'a str, &'a str)>,
}

/// The trace text: a comment naming the run, `with` lines for every policy file after
/// the first, and one `accept` or `reject` trace holding every monitored call with
/// exactly what it reported.
pub(crate) fn render(
    program: &Program,
    steps: &[RecordedStep],
    ending: &Ending<'_>,
    title: &str,
    with: &[String],
    world: &World,
) -> String {
    let policy = |p: usize| program.policies.get(p).map(|p| p.name.clone());
    let steps = steps
        .iter()
        .map(|s| Step {
            call: TraceEvent {
                event: s.event,
                args: s.args.clone(),
                result: s.result,
                opened: s
                    .opened
                    .map(|fd| policy_lang::descriptors::Opened { fd, filetype: 0 }),
                ..TraceEvent::default()
            },
            expect: s
                .notes
                .iter()
                .map(|n| match n {
                    StepNote::Audit {
                        policy: p, reason, ..
                    } => Expectation {
                        kind: ExpectKind::Audit,
                        reason: Some(reason.clone()),
                        policy: policy(*p),
                    },
                    StepNote::Suppress {
                        policy: p,
                        reason,
                        value,
                    } => Expectation {
                        kind: ExpectKind::Suppress(*value),
                        reason: Some(reason.clone()),
                        policy: policy(*p),
                    },
                })
                .collect(),
            line: 0,
        })
        .collect();
    let expect = match ending.deny {
        None => Expect::Accept,
        Some((step, policy, reason)) => Expect::Reject {
            step,
            policy: policy.to_string(),
            reason: Some(reason.to_string()),
        },
    };
    let file = TraceFile {
        with: with.to_vec(),
        traces: vec![Trace {
            name: format!("recorded run of {title}"),
            expect,
            world: world.clone(),
            steps,
            line: 0,
        }],
    };
    format!(
        "// recorded by `irm run`: {}\n{}",
        title.replace(['\n', '\r'], " "),
        trace::write(program, &file)
    )
}
