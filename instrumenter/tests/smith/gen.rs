//! Random weaving cases: a wasm-smith module plus a random, well-typed policy program over
//! that module's own function imports. Shared by `tests/smith.rs` (seeded, runs in CI)
//! and the cargo-fuzz target in `fuzz/` (included with `#[path]`).
//!
//! The property checked by [`check`]: weaving either fails with a `WeaveError`, or produces
//! a module that validates with the features the input validated with. Never a panic.
use arbitrary::{Result, Unstructured};
use instrumenter::{weave, WeaveOptions};
use policy_lang::ir::{
    BinOp, Event, Expr, Param, ParamType, Pattern, Phase, Policy, Program, State, Subject,
    Transition, UnOp, Update, ValType, Var, Verdict, IR_VERSION,
};
use wasmparser::{Validator, WasmFeatures};

/// One generated input for the weaver.
#[derive(Debug)]
pub struct Case {
    pub wasm: Vec<u8>,
    pub program: Program,
    pub host_hooks: bool,
}

/// What happened to one case.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The input does not validate under the default features: nothing to check.
    InputInvalid,
    /// The weaver refused the input with an error.
    Refused,
    /// The weaver produced a module that validates.
    Woven,
}

fn features() -> WasmFeatures {
    WasmFeatures::default()
}

/// Weaves the case and checks the output; `Err` describes a broken property.
pub fn check(case: &Case) -> std::result::Result<Outcome, String> {
    if Validator::new_with_features(features())
        .validate_all(&case.wasm)
        .is_err()
    {
        return Ok(Outcome::InputInvalid);
    }
    let options = WeaveOptions {
        host_hooks: case.host_hooks,
        ..WeaveOptions::default()
    };
    match weave(&case.wasm, &case.program, &options) {
        Err(_) => Ok(Outcome::Refused),
        Ok(woven) => match Validator::new_with_features(features()).validate_all(&woven.wasm) {
            Ok(_) => Ok(Outcome::Woven),
            Err(e) => Err(format!("the woven module does not validate: {e}")),
        },
    }
}

struct Import {
    module: String,
    field: String,
    params: Vec<ValType>,
    results: Vec<ValType>,
}

fn num(t: &wasmparser::ValType) -> Option<ValType> {
    match t {
        wasmparser::ValType::I32 => Some(ValType::I32),
        wasmparser::ValType::I64 => Some(ValType::I64),
        wasmparser::ValType::F32 => Some(ValType::F32),
        wasmparser::ValType::F64 => Some(ValType::F64),
        _ => None,
    }
}

/// Function imports whose signatures use numbers only, first declaration of each name.
fn function_imports(wasm: &[u8]) -> Vec<Import> {
    let mut types = Vec::new();
    let mut out: Vec<Import> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let Ok(payload) = payload else { break };
        match payload {
            wasmparser::Payload::TypeSection(reader) => {
                for group in reader.into_iter().flatten() {
                    for sub in group.into_types() {
                        types.push(sub.composite_type.inner.clone());
                    }
                }
            }
            wasmparser::Payload::ImportSection(reader) => {
                for import in reader.into_imports().flatten() {
                    let wasmparser::TypeRef::Func(t) = import.ty else {
                        continue;
                    };
                    let Some(wasmparser::CompositeInnerType::Func(f)) = types.get(t as usize)
                    else {
                        continue;
                    };
                    let params: Option<Vec<_>> = f.params().iter().map(num).collect();
                    let results: Option<Vec<_>> = f.results().iter().map(num).collect();
                    let (Some(params), Some(results)) = (params, results) else {
                        continue;
                    };
                    if out
                        .iter()
                        .any(|i| i.module == import.module && i.field == import.name)
                    {
                        continue;
                    }
                    out.push(Import {
                        module: import.module.into(),
                        field: import.name.into(),
                        params,
                        results,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

fn param_type(t: ValType) -> ParamType {
    match t {
        ValType::I32 => ParamType::I32,
        ValType::I64 => ParamType::I64,
        ValType::F32 => ParamType::F32,
        ValType::F64 => ParamType::F64,
    }
}

fn event_for(u: &mut Unstructured<'_>, import: &Import, index: usize) -> Result<Event> {
    let mut params = Vec::new();
    let mut i = 0;
    while i < import.params.len() {
        let pair =
            import.params[i] == ValType::I32 && import.params.get(i + 1) == Some(&ValType::I32);
        let name = format!("p{}", params.len());
        if pair && u.ratio(1, 3)? {
            params.push(Param {
                name,
                ty: ParamType::Str,
            });
            i += 2;
        } else {
            params.push(Param {
                name,
                ty: param_type(import.params[i]),
            });
            i += 1;
        }
    }
    let mut results = import.results.clone();
    // Now and then the policy expects another signature than the module has.
    if u.ratio(1, 20)? {
        if results.is_empty() {
            results.push(ValType::I32);
        } else {
            results[0] = if results[0] == ValType::I64 {
                ValType::I32
            } else {
                ValType::I64
            };
        }
    }
    Ok(Event {
        name: format!("e{index}"),
        module: import.module.clone(),
        field: import.field.clone(),
        params,
        results,
    })
}

struct Scope<'e> {
    event: &'e Event,
    phase: Phase,
    vars: usize,
}

impl Scope<'_> {
    fn int_params(&self) -> Vec<u32> {
        (0..self.event.params.len() as u32)
            .filter(|&p| {
                matches!(
                    self.event.params[p as usize].ty,
                    ParamType::I32 | ParamType::I64
                )
            })
            .collect()
    }
    fn str_params(&self) -> Vec<u32> {
        (0..self.event.params.len() as u32)
            .filter(|&p| self.event.params[p as usize].ty == ParamType::Str)
            .collect()
    }
    fn has_result(&self) -> bool {
        self.phase == Phase::Post
            && self.event.results.len() == 1
            && matches!(self.event.results[0], ValType::I32 | ValType::I64)
    }
}

const PATTERN_TEXT: [&str; 8] = [
    "/tmp/",
    "/tmp/**",
    "*.pem",
    "**/*.key",
    "a?c",
    "",
    "/etc/passwd",
    "x\\*y",
];

fn small_int(u: &mut Unstructured<'_>) -> Result<i64> {
    Ok(match u.int_in_range(0..=5)? {
        0 => i64::MIN,
        1 => i64::MAX,
        2 => u.arbitrary::<i32>()? as i64,
        _ => u.int_in_range(-4..=8)?,
    })
}

fn int_expr(u: &mut Unstructured<'_>, s: &Scope<'_>, depth: u32) -> Result<Expr> {
    let leaf = depth == 0 || u.ratio(1, 2)?;
    if leaf {
        let params = s.int_params();
        return Ok(match u.int_in_range(0..=3)? {
            0 if !params.is_empty() => Expr::Param(*u.choose(&params)?),
            1 if s.vars > 0 => Expr::Var(u.int_in_range(0..=s.vars as u32 - 1)?),
            2 if s.has_result() => Expr::Result,
            _ => Expr::Int(small_int(u)?),
        });
    }
    if u.ratio(1, 5)? {
        let op = *u.choose(&[UnOp::Neg, UnOp::BitNot])?;
        return Ok(Expr::Unary(op, Box::new(int_expr(u, s, depth - 1)?)));
    }
    let op = *u.choose(&[
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
        BinOp::Rem,
        BinOp::BitAnd,
        BinOp::BitOr,
        BinOp::BitXor,
        BinOp::Shl,
        BinOp::Shr,
    ])?;
    Ok(Expr::Binary(
        op,
        Box::new(int_expr(u, s, depth - 1)?),
        Box::new(int_expr(u, s, depth - 1)?),
    ))
}

fn bool_expr(u: &mut Unstructured<'_>, s: &Scope<'_>, depth: u32) -> Result<Expr> {
    let strs = s.str_params();
    let choice = if depth == 0 {
        u.int_in_range(0..=2)?
    } else {
        u.int_in_range(0..=5)?
    };
    Ok(match choice {
        0 => Expr::Bool(u.arbitrary()?),
        1 if !strs.is_empty() => {
            let text = u.choose(&PATTERN_TEXT)?.to_string();
            let pattern = match u.int_in_range(0..=2)? {
                0 => Pattern::Exact(text),
                1 => Pattern::Prefix(text),
                _ => Pattern::Glob(text),
            };
            Expr::Str(Subject::Raw(*u.choose(&strs)?), pattern)
        }
        1..=3 => {
            let op = *u.choose(&[
                BinOp::Eq,
                BinOp::Ne,
                BinOp::Lt,
                BinOp::Le,
                BinOp::Gt,
                BinOp::Ge,
            ])?;
            let d = depth.saturating_sub(1);
            Expr::Binary(
                op,
                Box::new(int_expr(u, s, d)?),
                Box::new(int_expr(u, s, d)?),
            )
        }
        4 => Expr::Unary(UnOp::Not, Box::new(bool_expr(u, s, depth - 1)?)),
        _ => {
            let op = *u.choose(&[BinOp::And, BinOp::Or])?;
            Expr::Binary(
                op,
                Box::new(bool_expr(u, s, depth - 1)?),
                Box::new(bool_expr(u, s, depth - 1)?),
            )
        }
    })
}

fn policy(u: &mut Unstructured<'_>, events: &[Event], index: usize) -> Result<Policy> {
    let n_states = u.int_in_range(1..=3u32)?;
    let mut vars = Vec::new();
    for v in 0..u.int_in_range(0..=2)? {
        let min = u.int_in_range(-3..=0i64)?;
        let max = u.int_in_range(0..=5i64)?;
        vars.push(Var {
            name: format!("v{v}"),
            min,
            max,
            init: u.int_in_range(min..=max)?,
        });
    }
    let mut transitions = Vec::new();
    for t in 0..u.int_in_range(0..=6)? {
        if events.is_empty() {
            break;
        }
        let event = u.int_in_range(0..=events.len() as u32 - 1)?;
        let e = &events[event as usize];
        let phase = if u.ratio(1, 3)? {
            Phase::Post
        } else {
            Phase::Pre
        };
        let scope = Scope {
            event: e,
            phase,
            vars: vars.len(),
        };
        let mut from: Vec<u32> = (0..n_states)
            .filter(|_| u.ratio(2, 3).unwrap_or(true))
            .collect();
        if from.is_empty() {
            from.push(0);
        }
        let mut updates = Vec::new();
        for _ in 0..u.int_in_range(0..=vars.len().min(2))? {
            let var = u.int_in_range(0..=vars.len() as u32 - 1)?;
            updates.push(Update {
                var,
                value: int_expr(u, &scope, 2)?,
            });
        }
        let single_int_result = e.results.is_empty()
            || (e.results.len() == 1 && matches!(e.results[0], ValType::I32 | ValType::I64));
        let verdict = match u.int_in_range(0..=3)? {
            0 => Verdict::Allow,
            1 => Verdict::Audit,
            2 if phase == Phase::Pre && single_int_result => {
                Verdict::Suppress(if e.results.is_empty() {
                    None
                } else {
                    Some(u.int_in_range(-2..=70)?)
                })
            }
            _ => Verdict::Deny,
        };
        transitions.push(Transition {
            event,
            phase,
            from,
            guard: bool_expr(u, &scope, 3)?,
            updates,
            set_updates: vec![],
            verdict,
            next: if u.arbitrary()? {
                Some(u.int_in_range(0..=n_states - 1)?)
            } else {
                None
            },
            reason: if u.arbitrary()? {
                Some(format!("reason {t}"))
            } else {
                None
            },
            origin: format!("smith.pol:{}:1", t + 1),
        });
    }
    Ok(Policy {
        name: format!("p{index}"),
        states: (0..n_states)
            .map(|s| State {
                name: format!("s{s}"),
            })
            .collect(),
        initial: u.int_in_range(0..=n_states - 1)?,
        vars,
        transitions,
        allow_shared_memory_strings: u.ratio(1, 4)?,
        allow_undelivered_audits: u.ratio(1, 2)?,
        sets: vec![],
    })
}

/// A module from wasm-smith and a program over (some of) its function imports.
pub fn case(u: &mut Unstructured<'_>) -> Result<Case> {
    let mut config = wasm_smith::Config {
        min_imports: 1,
        max_imports: 8,
        max_funcs: 12,
        max_instructions: 60,
        ..wasm_smith::Config::default()
    };
    config.min_funcs = u.int_in_range(0..=2)?;
    let module = wasm_smith::Module::new(config, u)?;
    let wasm = module.to_bytes();
    let imports = function_imports(&wasm);
    let mut events = Vec::new();
    for (i, import) in imports.iter().enumerate() {
        if u.ratio(3, 4)? {
            events.push(event_for(u, import, i)?);
        }
    }
    let mut policies = Vec::new();
    for p in 0..u.int_in_range(1..=3)? {
        policies.push(policy(u, &events, p)?);
    }
    Ok(Case {
        wasm,
        program: Program {
            version: IR_VERSION,
            events,
            policies,
        },
        host_hooks: u.ratio(1, 4)?,
    })
}

/// A wasm-smith component and a random policy program over the functions it imports
/// (their lowered core signatures): the same property as [`check`].
pub fn component_case(u: &mut Unstructured<'_>) -> Result<Case> {
    let config = wasm_smith::Config {
        max_imports: 8,
        max_funcs: 8,
        ..wasm_smith::Config::default()
    };
    let component = wasm_smith::Component::new(config, u)?;
    let wasm = component.to_bytes();
    let imports = lowered_imports(&wasm);
    let mut events = Vec::new();
    for (i, import) in imports.iter().enumerate() {
        if u.ratio(3, 4)? {
            events.push(event_for(u, import, i)?);
        }
    }
    let mut policies = Vec::new();
    for p in 0..u.int_in_range(1..=3)? {
        policies.push(policy(u, &events, p)?);
    }
    Ok(Case {
        wasm,
        program: Program {
            version: IR_VERSION,
            events,
            policies,
        },
        host_hooks: u.ratio(1, 4)?,
    })
}

/// The imported functions a component lowers, as `(interface, function)` with the
/// lowered core signature; empty when the component does not validate.
fn lowered_imports(wasm: &[u8]) -> Vec<Import> {
    let features = WasmFeatures::default() | WasmFeatures::COMPONENT_MODEL;
    let Ok(types) = Validator::new_with_features(features).validate_all(wasm) else {
        return Vec::new();
    };
    let mut instances: Vec<Option<String>> = Vec::new();
    let mut funcs: Vec<Option<(String, String)>> = Vec::new();
    let mut core_funcs = 0u32;
    let mut out: Vec<Import> = Vec::new();
    let mut parser = wasmparser::Parser::new(0);
    let mut rest = wasm;
    while let Ok(wasmparser::Chunk::Parsed { consumed, payload }) = parser.parse(rest, true) {
        rest = &rest[consumed..];
        match payload {
            wasmparser::Payload::ModuleSection {
                unchecked_range, ..
            }
            | wasmparser::Payload::ComponentSection {
                unchecked_range, ..
            } => {
                rest = &rest[unchecked_range.len()..];
            }
            wasmparser::Payload::ComponentImportSection(r) => {
                for i in r.into_iter().flatten() {
                    match i.ty {
                        wasmparser::ComponentTypeRef::Instance(_) => {
                            instances.push(Some(i.name.name.to_string()))
                        }
                        wasmparser::ComponentTypeRef::Func(_) => {
                            funcs.push(Some(("$root".into(), i.name.name.to_string())))
                        }
                        _ => {}
                    }
                }
            }
            wasmparser::Payload::ComponentAliasSection(r) => {
                for a in r.into_iter().flatten() {
                    match a {
                        wasmparser::ComponentAlias::InstanceExport {
                            kind: wasmparser::ComponentExternalKind::Func,
                            instance_index,
                            name,
                        } => funcs.push(
                            instances
                                .get(instance_index as usize)
                                .cloned()
                                .flatten()
                                .map(|m| (m, name.to_string())),
                        ),
                        wasmparser::ComponentAlias::InstanceExport {
                            kind: wasmparser::ComponentExternalKind::Instance,
                            ..
                        } => instances.push(None),
                        wasmparser::ComponentAlias::CoreInstanceExport {
                            kind: wasmparser::ExternalKind::Func,
                            ..
                        } => core_funcs += 1,
                        _ => {}
                    }
                }
            }
            wasmparser::Payload::ComponentInstanceSection(r) => {
                instances.extend(r.into_iter().map(|_| None));
            }
            wasmparser::Payload::ComponentExportSection(r) => {
                for e in r.into_iter().flatten() {
                    match e.kind {
                        wasmparser::ComponentExternalKind::Func => funcs.push(None),
                        wasmparser::ComponentExternalKind::Instance => instances.push(None),
                        _ => {}
                    }
                }
            }
            wasmparser::Payload::ComponentCanonicalSection(r) => {
                for f in r.into_iter().flatten() {
                    match f {
                        wasmparser::CanonicalFunction::Lift { .. } => funcs.push(None),
                        wasmparser::CanonicalFunction::Lower { func_index, .. } => {
                            let id = types.as_ref().core_function_at(core_funcs);
                            core_funcs += 1;
                            let Some(Some((module, field))) = funcs.get(func_index as usize) else {
                                continue;
                            };
                            let wasmparser::CompositeInnerType::Func(f) =
                                &types[id].composite_type.inner
                            else {
                                continue;
                            };
                            let params: Option<Vec<_>> = f.params().iter().map(num).collect();
                            let results: Option<Vec<_>> = f.results().iter().map(num).collect();
                            let (Some(params), Some(results)) = (params, results) else {
                                continue;
                            };
                            if !out.iter().any(|i| &i.module == module && &i.field == field) {
                                out.push(Import {
                                    module: module.clone(),
                                    field: field.clone(),
                                    params,
                                    results,
                                });
                            }
                        }
                        _ => core_funcs += 1,
                    }
                }
            }
            wasmparser::Payload::End(_) => break,
            _ => {}
        }
    }
    out
}
