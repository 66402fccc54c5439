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
    random_case(u, wasm, &imports)
}

/// `wasm` with a random policy program over (most of) `imports`.
fn random_case(u: &mut Unstructured<'_>, wasm: Vec<u8>, imports: &[Import]) -> Result<Case> {
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
    random_case(u, wasm, &imports)
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

// ---- wired components: a wasm-smith core module behind random routes ----------------

/// How a wired component hands one lowered import to its main core module.
#[derive(Clone, Copy, Debug)]
pub enum Route {
    /// Lowered before main and passed to it directly.
    Early,
    /// Lowered before main and passed through a relay instance that exports it again.
    Relay,
    /// Lowered after main (with main's memory, as wit-component does), reaching main
    /// through a shim's table that a fixup fills.
    Late,
}

const WIRED_INTERFACE: &str = "example:fuzz/host";

fn wasm_type(t: ValType) -> &'static str {
    match t {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
    }
}

fn component_type(t: ValType) -> &'static str {
    match t {
        ValType::I32 => "s32",
        ValType::I64 => "s64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
    }
}

/// A wasm-smith core module importing functions of [`WIRED_INTERFACE`] (and exporting
/// a memory), wrapped in a component that lowers each import and hands it over by a
/// random [`Route`]; a random policy over those imports. Returns the routes too.
pub fn wired_component_case(u: &mut Unstructured<'_>) -> Result<(Case, Vec<Route>)> {
    let n = u.int_in_range(1..=5)?;
    let mut sigs = Vec::new();
    for _ in 0..n {
        let params: Vec<ValType> = (0..u.int_in_range(0..=4)?)
            .map(|_| Ok(*u.choose(&[ValType::I32, ValType::I32, ValType::I64, ValType::F64])?))
            .collect::<Result<_>>()?;
        let result: Option<ValType> = if u.ratio(2, 3)? {
            Some(*u.choose(&[ValType::I32, ValType::I64])?)
        } else {
            None
        };
        sigs.push((params, result));
    }
    let sig_text = |(params, result): &(Vec<ValType>, Option<ValType>)| {
        let p: Vec<&str> = params.iter().map(|t| wasm_type(*t)).collect();
        let r = result.map_or(String::new(), |t| format!(" (result {})", wasm_type(t)));
        format!("(param {}){r}", p.join(" "))
    };
    let available = wat::parse_str(format!(
        "(module {})",
        sigs.iter()
            .enumerate()
            .map(|(i, s)| format!(
                r#"(import "{WIRED_INTERFACE}" "f{i}" (func {}))"#,
                sig_text(s)
            ))
            .collect::<String>()
    ))
    .expect("the available imports parse");
    let exports = wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap();
    let config = wasm_smith::Config {
        available_imports: Some(available),
        exports: Some(exports),
        max_funcs: 8,
        max_instructions: 40,
        min_memories: 1,
        max_memories: 1,
        ..wasm_smith::Config::default()
    };
    let main = wasm_smith::Module::new(config, u)?.to_bytes();
    let imported: Vec<usize> = function_imports(&main)
        .iter()
        .filter_map(|i| i.field.strip_prefix('f')?.parse().ok())
        .collect();
    // Late lowerings read main's memory; without one exported, they are early.
    let exports_memory = wasmparser::Parser::new(0)
        .parse_all(&main)
        .any(|p| match p {
            Ok(wasmparser::Payload::ExportSection(r)) => r
                .into_iter()
                .flatten()
                .any(|e| e.name == "memory" && e.kind == wasmparser::ExternalKind::Memory),
            _ => false,
        });
    let choices: &[Route] = if exports_memory {
        &[Route::Early, Route::Relay, Route::Late]
    } else {
        &[Route::Early, Route::Relay]
    };
    let routes: Vec<Route> = (0..n)
        .map(|_| Ok(*u.choose(choices)?))
        .collect::<Result<_>>()?;
    let wasm = wire(&main, &sigs, &imported, &routes);
    let imports = lowered_imports(&wasm);
    Ok((random_case(u, wasm, &imports)?, routes))
}

/// The component text around `main` (imports `f{i}` of it listed in `imported`).
fn wire(
    main: &[u8],
    sigs: &[(Vec<ValType>, Option<ValType>)],
    imported: &[usize],
    routes: &[Route],
) -> Vec<u8> {
    let core_sig = |i: usize| {
        let (params, result) = &sigs[i];
        let p: Vec<&str> = params.iter().map(|t| wasm_type(*t)).collect();
        let r = result.map_or(String::new(), |t| format!(" (result {})", wasm_type(t)));
        format!("(param {}){r}", p.join(" "))
    };
    let mut t = String::from("(component\n");
    t.push_str(&format!(r#"(import "{WIRED_INTERFACE}" (instance $host"#));
    for (i, (params, result)) in sigs.iter().enumerate() {
        let p: String = params
            .iter()
            .enumerate()
            .map(|(k, ty)| format!(r#" (param "p{k}" {})"#, component_type(*ty)))
            .collect();
        let r = result.map_or(String::new(), |ty| {
            format!(" (result {})", component_type(ty))
        });
        t.push_str(&format!(r#" (export "f{i}" (func{p}{r}))"#));
    }
    t.push_str("))\n");
    let late: Vec<usize> = imported
        .iter()
        .copied()
        .filter(|&i| matches!(routes[i], Route::Late))
        .collect();
    // The shim: one trampoline per late import, through its table.
    t.push_str(&format!(
        "(core module $shim (table (export \"t\") {n} {n} funcref)\n",
        n = late.len()
    ));
    for (k, &i) in late.iter().enumerate() {
        let args: String = (0..sigs[i].0.len())
            .map(|p| format!(" local.get {p}"))
            .collect();
        t.push_str(&format!(
            "  (type $t{k} (func {s})) (func (export \"{k}\") (type $t{k}){args} i32.const {k} call_indirect (type $t{k}))\n",
            s = core_sig(i)
        ));
    }
    t.push_str(")\n(core instance $shim (instantiate $shim))\n");
    // Early and relayed lowerings, without memory.
    let mut main_args = Vec::new();
    for &i in imported {
        match routes[i] {
            Route::Early => {
                t.push_str(&format!(
                    "(core func $f{i} (canon lower (func $host \"f{i}\")))\n"
                ));
                main_args.push(format!("(export \"f{i}\" (func $f{i}))"));
            }
            Route::Relay => {
                t.push_str(&format!(
                    "(core func $raw{i} (canon lower (func $host \"f{i}\")))\n\
                     (core module $relay{i} (import \"n\" \"f\" (func $f {s})) (export \"f\" (func $f)))\n\
                     (core instance $relay{i} (instantiate $relay{i} (with \"n\" (instance (export \"f\" (func $raw{i}))))))\n",
                    s = core_sig(i)
                ));
                main_args.push(format!("(export \"f{i}\" (func $relay{i} \"f\"))"));
            }
            Route::Late => {
                let k = late.iter().position(|&l| l == i).unwrap();
                main_args.push(format!("(export \"f{i}\" (func $shim \"{k}\"))"));
            }
        }
    }
    // wasm-smith's module as text, renamed into the component (`(module` -> `(core module $main`).
    let text = wasmprinter::print_bytes(main).expect("wasm-smith's module prints");
    let body = text.trim_start().strip_prefix("(module").expect("a module");
    t.push_str(&format!("(core module $main {body}\n"));
    t.push_str(&format!(
        "(core instance $main (instantiate $main (with \"{WIRED_INTERFACE}\" (instance {}))))\n",
        main_args.join(" ")
    ));
    if !late.is_empty() {
        t.push_str("(alias core export $main \"memory\" (core memory $memory))\n");
        let mut fix = String::from("(core module $fixup (import \"\" \"t\" (table 0 funcref))");
        let mut fix_args = String::from("(export \"t\" (table $shim \"t\"))");
        for (k, &i) in late.iter().enumerate() {
            t.push_str(&format!(
                "(core func $late{i} (canon lower (func $host \"f{i}\") (memory $memory)))\n"
            ));
            fix.push_str(&format!(
                " (import \"\" \"{k}\" (func $g{k} {}))",
                core_sig(i)
            ));
            fix_args.push_str(&format!(" (export \"{k}\" (func $late{i}))"));
        }
        let elems: String = (0..late.len()).map(|k| format!(" $g{k}")).collect();
        fix.push_str(&format!(" (elem (i32.const 0) func{elems}))\n"));
        t.push_str(&fix);
        t.push_str(&format!(
            "(core instance (instantiate $fixup (with \"\" (instance {fix_args}))))\n"
        ));
    }
    t.push(')');
    wat::parse_str(&t).unwrap_or_else(|e| panic!("the wired component does not parse: {e}\n{t}"))
}

/// Complete mediation in a woven component, checked independently of the weaver: every
/// reference to a lowering of an import the woven program monitors is an export of an
/// instance that is used only as an argument of the monitor's instantiation (the one
/// core module carrying `irm.monitor`).
pub fn check_mediation(woven: &[u8], program: &Program) -> std::result::Result<(), String> {
    use wasmparser::{
        CanonicalFunction, CanonicalOption, ComponentAlias, ComponentExternalKind, ComponentType,
        ExternalKind, Instance, Payload,
    };
    let imported: Vec<(String, String)> = lowered_imports(woven)
        .into_iter()
        .map(|i| (i.module, i.field))
        .collect();
    let view = program
        .restricted_to_imports(imported.iter().map(|(m, f)| (m.as_str(), f.as_str())))
        .for_component();
    let monitored = |m: &str, f: &str| matches!(view.event_for_spelling(m, f), Ok(Some((e, _))) if view.monitors(e));
    let mut instances: Vec<Option<String>> = Vec::new();
    let mut funcs: Vec<Option<(String, String)>> = Vec::new();
    let mut core_funcs = 0u32;
    let mut core_instances = 0u32;
    let mut modules = 0u32;
    let mut monitor_module = None;
    let mut raw: Vec<u32> = Vec::new();
    // (instance, uses as instantiation argument of the monitor, other uses)
    let mut holders: Vec<u32> = Vec::new();
    let mut arg_of_monitor: Vec<u32> = Vec::new();
    let mut other_uses: Vec<u32> = Vec::new();
    let mut bad: Vec<String> = Vec::new();
    let mut parser = wasmparser::Parser::new(0);
    let mut rest = woven;
    while let Ok(wasmparser::Chunk::Parsed { consumed, payload }) = parser.parse(rest, true) {
        rest = &rest[consumed..];
        match payload {
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                let bytes = &woven[unchecked_range.clone()];
                let is_monitor = wasmparser::Parser::new(0).parse_all(bytes).any(
                    |p| matches!(p, Ok(Payload::CustomSection(c)) if c.name() == "irm.monitor"),
                );
                if is_monitor {
                    monitor_module = Some(modules);
                }
                modules += 1;
                rest = &rest[unchecked_range.len()..];
            }
            Payload::ComponentSection {
                unchecked_range, ..
            } => rest = &rest[unchecked_range.len()..],
            Payload::ComponentImportSection(r) => {
                for i in r.into_iter().flatten() {
                    match i.ty {
                        wasmparser::ComponentTypeRef::Instance(_) => {
                            instances.push(Some(i.name.name.to_string()))
                        }
                        wasmparser::ComponentTypeRef::Func(_) => {
                            funcs.push(Some(("$root".into(), i.name.name.to_string())))
                        }
                        wasmparser::ComponentTypeRef::Module(_) => modules += 1,
                        _ => {}
                    }
                }
            }
            Payload::ComponentAliasSection(r) => {
                for a in r.into_iter().flatten() {
                    match a {
                        ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Func,
                            instance_index,
                            name,
                        } => funcs.push(
                            instances
                                .get(instance_index as usize)
                                .cloned()
                                .flatten()
                                .map(|m| (m, name.to_string())),
                        ),
                        ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Instance,
                            ..
                        } => instances.push(None),
                        ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Module,
                            ..
                        } => modules += 1,
                        ComponentAlias::CoreInstanceExport {
                            kind,
                            instance_index,
                            ..
                        } => {
                            if holders.contains(&instance_index) {
                                other_uses.push(instance_index);
                            }
                            if kind == ExternalKind::Func {
                                core_funcs += 1;
                            }
                        }
                        ComponentAlias::Outer {
                            kind: wasmparser::ComponentOuterAliasKind::CoreModule,
                            ..
                        } => modules += 1,
                        _ => {}
                    }
                }
            }
            Payload::ComponentInstanceSection(r) => {
                instances.extend(r.into_iter().map(|_| None));
            }
            Payload::ComponentExportSection(r) => {
                for e in r.into_iter().flatten() {
                    match e.kind {
                        ComponentExternalKind::Func => funcs.push(None),
                        ComponentExternalKind::Instance => instances.push(None),
                        ComponentExternalKind::Module => modules += 1,
                        _ => {}
                    }
                }
            }
            Payload::ComponentTypeSection(r) => {
                for ty in r.into_iter().flatten() {
                    if let ComponentType::Resource { dtor: Some(d), .. } = ty {
                        if raw.contains(&d) {
                            bad.push(format!(
                                "a raw lowering (core func {d}) is a resource destructor"
                            ));
                        }
                    }
                }
            }
            Payload::ComponentCanonicalSection(r) => {
                for f in r.into_iter().flatten() {
                    let mut refs: Vec<u32> = Vec::new();
                    let mut options: &[CanonicalOption] = &[];
                    match &f {
                        CanonicalFunction::Lift {
                            core_func_index,
                            options: o,
                            ..
                        } => {
                            refs.push(*core_func_index);
                            options = o;
                            funcs.push(None);
                        }
                        CanonicalFunction::Lower {
                            func_index,
                            options: o,
                        } => {
                            if let Some(Some((m, fd))) = funcs.get(*func_index as usize) {
                                if monitored(m, fd) {
                                    raw.push(core_funcs);
                                }
                            }
                            options = o;
                            core_funcs += 1;
                        }
                        _ => core_funcs += 1,
                    }
                    for o in options {
                        if let CanonicalOption::Realloc(x)
                        | CanonicalOption::PostReturn(x)
                        | CanonicalOption::Callback(x) = o
                        {
                            refs.push(*x);
                        }
                    }
                    for x in refs {
                        if raw.contains(&x) {
                            bad.push(format!(
                                "a raw lowering (core func {x}) is used by a canonical function"
                            ));
                        }
                    }
                }
            }
            Payload::InstanceSection(r) => {
                for i in r.into_iter().flatten() {
                    match i {
                        Instance::Instantiate { module_index, args } => {
                            for a in args.iter() {
                                if holders.contains(&a.index) {
                                    if Some(module_index) == monitor_module {
                                        arg_of_monitor.push(a.index);
                                    } else {
                                        other_uses.push(a.index);
                                    }
                                }
                            }
                        }
                        Instance::FromExports(exports) => {
                            let holds = exports
                                .iter()
                                .any(|e| e.kind == ExternalKind::Func && raw.contains(&e.index));
                            if holds {
                                holders.push(core_instances);
                            }
                        }
                    }
                    core_instances += 1;
                }
            }
            Payload::End(_) => break,
            _ => {}
        }
    }
    for h in &holders {
        if other_uses.contains(h) || !arg_of_monitor.contains(h) {
            bad.push(format!(
                "core instance {h} holds a raw lowering and is used other than to instantiate the monitor"
            ));
        }
    }
    if !raw.is_empty() && monitor_module.is_none() {
        bad.push("monitored imports are lowered but no module carries irm.monitor".into());
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("; "))
    }
}
