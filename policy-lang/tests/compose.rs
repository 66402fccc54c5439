//! Property tests of composition: a program compiled from several policy files decides
//! every trace exactly as the policies decide it separately.
//!
//! For the shipped policies (`policies/*.pol`), random traces over the union of their
//! events are run through each policy alone and through the composition; the composed
//! verdict must be the one the separate verdicts predict:
//! * the violation is the earliest one (by step, pre before post), the first policy in
//!   program order on a tie;
//! * the observations are every separate observation before that point, audits in
//!   program order and then the first suppression of each step and phase.
//!
//! The prediction holds because no shipped policy has an `after` transition on an event
//! another one suppresses (a suppressed call has no post phase in the composition, but
//! would have one in a policy that does not suppress it); `composition_precondition_holds`
//! checks that.
use policy_lang::interp::{
    self, Observation, ObservationKind, TraceEvent, Value, Verdict, Violation,
};
use policy_lang::ir::{ParamType, Phase, Program, Verdict as IrVerdict};
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

const POLICIES: &[&str] = &[
    "no-exfil",
    "max-windows",
    "no-secrets",
    "stdio-only",
    "tmp-writes",
    "chinese-wall",
    "no-network-errno",
    "audit-files",
];

fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policies")
        .join(format!("{name}.pol"))
}

fn compile(names: &[&str]) -> Program {
    let paths: Vec<PathBuf> = names.iter().map(|n| path(n)).collect();
    match policy_lang::compile_files(&paths) {
        Ok(c) => c.program,
        Err(d) => panic!("{names:?} do not compile:\n{}", d.render()),
    }
}

/// Each policy compiled alone, compiled once per test binary.
fn single(name: &str) -> Program {
    static CACHE: OnceLock<Mutex<HashMap<String, Program>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(name.to_string())
        .or_insert_with(|| compile(&[name]))
        .clone()
}

/// One call, independent of any program's event numbering.
#[derive(Clone, Debug)]
struct Call {
    import: (String, String),
    /// One value per parameter (all programs agree on an import's parameters).
    args: Vec<Value>,
    result: i64,
}

const INTS: &[i64] = &[0, 1, 2, 3, 4, 5, -1, 8, 64, 9, 1 << 32 | 1, i64::MIN];
const STRS: &[&str] = &[
    "/tmp/x",
    "/tmp/../etc/passwd",
    "/tmpfoo",
    "/data/a/r.txt",
    "/data/b/s.txt",
    "/data/a/../b/s",
    "/home/u/.ssh/id_rsa",
    "keys/server.pem",
    "/etc/shadow",
    "notes.txt",
    "",
];

fn value(ty: ParamType, pick: u8) -> Value {
    match ty {
        ParamType::Str if pick as usize % (STRS.len() + 1) == STRS.len() => Value::Str(None),
        ParamType::Str => Value::Str(Some(
            STRS[pick as usize % (STRS.len() + 1)].as_bytes().to_vec(),
        )),
        ParamType::F32 | ParamType::F64 => Value::Float(pick as f64),
        _ => Value::Int(INTS[pick as usize % INTS.len()]),
    }
}

/// A random trace over the events of `program`.
fn calls(program: &Program, raw: &[(u8, Vec<u8>, u8)]) -> Vec<Call> {
    raw.iter()
        .map(|(e, picks, r)| {
            let ev = &program.events[*e as usize % program.events.len()];
            let args = ev
                .params
                .iter()
                .enumerate()
                .map(|(i, p)| value(p.ty, picks.get(i).copied().unwrap_or(0)))
                .collect();
            Call {
                import: (ev.module.clone(), ev.field.clone()),
                args,
                result: INTS[*r as usize % INTS.len()],
            }
        })
        .collect()
}

/// Runs the calls `program` monitors; steps are renumbered to the full trace.
fn run(program: &Program, calls: &[Call]) -> Verdict {
    let mut trace = Vec::new();
    let mut step_of = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        if let Some(event) = program.event_for_import(&c.import.0, &c.import.1) {
            trace.push(TraceEvent {
                event,
                args: c.args.clone(),
                result: Some(c.result),
                ..TraceEvent::default()
            });
            step_of.push(i + 1);
        }
    }
    let mut v = interp::run_trace(program, &trace);
    for o in &mut v.observations {
        o.step = step_of[o.step - 1];
    }
    if let Some(x) = &mut v.violation {
        x.step = step_of[x.step - 1];
    }
    v
}

fn at(step: usize, phase: Phase) -> (usize, u8) {
    (step, if phase == Phase::Pre { 0 } else { 1 })
}

/// The composed verdict the separate ones predict (policies in program order).
fn predict(separate: &[Verdict]) -> Verdict {
    let violation: Option<Violation> = separate
        .iter()
        .filter_map(|v| v.violation.clone())
        .enumerate()
        .min_by_key(|(i, x)| (at(x.step, x.phase), *i))
        .map(|(_, x)| x);
    let limit = violation.as_ref().map(|x| at(x.step, x.phase));
    let mut all: Vec<(usize, Observation)> = separate
        .iter()
        .enumerate()
        .flat_map(|(i, v)| v.observations.iter().cloned().map(move |o| (i, o)))
        .filter(|(_, o)| limit.is_none_or(|l| at(o.step, o.phase) < l))
        .collect();
    // Per step and phase: audits in program order, then the suppressions.
    all.sort_by_key(|(i, o)| {
        (
            at(o.step, o.phase),
            matches!(o.kind, ObservationKind::Suppress(_)),
            *i,
        )
    });
    let mut observations: Vec<Observation> = Vec::new();
    for (_, o) in all {
        let dup_suppress = matches!(o.kind, ObservationKind::Suppress(_))
            && observations.iter().any(|p| {
                matches!(p.kind, ObservationKind::Suppress(_))
                    && at(p.step, p.phase) == at(o.step, o.phase)
            });
        if !dup_suppress {
            observations.push(o);
        }
    }
    Verdict {
        violation,
        observations,
    }
}

fn check_composition(names: &[&str], raw: &[(u8, Vec<u8>, u8)]) -> Result<(), TestCaseError> {
    let composed = compile(names);
    let trace = calls(&composed, raw);
    let separate: Vec<Verdict> = names.iter().map(|n| run(&single(n), &trace)).collect();
    let expected = predict(&separate);
    let got = run(&composed, &trace);
    prop_assert_eq!(got, expected, "policies {:?}, trace {:?}", names, trace);
    Ok(())
}

fn raw_trace() -> impl Strategy<Value = Vec<(u8, Vec<u8>, u8)>> {
    prop::collection::vec(
        (
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 8),
            any::<u8>(),
        ),
        0..24,
    )
}

fn subset() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(POLICIES.to_vec(), 2..=POLICIES.len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn composed_policies_decide_like_the_separate_ones(names in subset(), raw in raw_trace()) {
        check_composition(&names, &raw)?;
    }

    #[test]
    fn composition_order_only_changes_which_policy_is_reported(names in subset(), raw in raw_trace()) {
        let mut reversed = names.clone();
        reversed.reverse();
        let a = compile(&names);
        let b = compile(&reversed);
        let trace = calls(&a, &raw);
        let (va, vb) = (run(&a, &trace), run(&b, &trace));
        prop_assert_eq!(va.violation.map(|x| (x.step, x.phase)), vb.violation.map(|x| (x.step, x.phase)));
        prop_assert_eq!(va.observations.len(), vb.observations.len());
    }
}

#[test]
fn all_eight_policies_compose() {
    let p = compile(POLICIES);
    assert_eq!(p.policies.len(), POLICIES.len());
}

#[test]
fn composition_precondition_holds() {
    // No policy has an `after` transition on an event some policy suppresses.
    let p = compile(POLICIES);
    let suppressed: Vec<u32> = p
        .policies
        .iter()
        .flat_map(|q| q.transitions.iter())
        .filter(|t| matches!(t.verdict, IrVerdict::Suppress(_)))
        .map(|t| t.event)
        .collect();
    for q in &p.policies {
        for t in &q.transitions {
            assert!(
                !(t.phase == Phase::Post && suppressed.contains(&t.event)),
                "{} has an after transition on suppressed event {}",
                q.name,
                p.events[t.event as usize].name
            );
        }
    }
}

/// Found by the property above: an event only the descriptor table needs (fd_renumber
/// here) reports its call-level faults through the policy that keeps the table, as that
/// policy would alone, not through the first policy of the program.
#[test]
fn a_table_fault_on_an_event_no_policy_names_is_the_tracking_policys() {
    check_composition(
        &["max-windows", "chinese-wall", "no-network-errno"],
        &[(134, vec![0, 66, 0, 0, 0, 0, 0, 0], 0)],
    )
    .unwrap();
}
