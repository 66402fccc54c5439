//! Helpers shared by the integration tests of the instrumenter.
#![allow(dead_code)]
use policy_lang::ir::{
    Event, Expr, Param, ParamType, Phase, Policy, Program, State, Transition, ValType, Verdict,
    IR_VERSION,
};

/// The core value type of an event parameter or result, if events can carry it.
pub fn val_type(t: &wasmparser::ValType) -> Option<ValType> {
    match t {
        wasmparser::ValType::I32 => Some(ValType::I32),
        wasmparser::ValType::I64 => Some(ValType::I64),
        wasmparser::ValType::F32 => Some(ValType::F32),
        wasmparser::ValType::F64 => Some(ValType::F64),
        _ => None,
    }
}

/// A program auditing every function import of `wasm` whose signature an event can
/// describe (numbers only). Imports of one `module.field` with different signatures are
/// left out: no single event can name them.
pub fn audit_every_import(wasm: &[u8]) -> Option<Program> {
    let mut types = Vec::new();
    let mut imports: Vec<(String, String, u32)> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.ok()? {
            wasmparser::Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group.ok()?.into_types() {
                        types.push(sub.composite_type.inner.clone());
                    }
                }
            }
            wasmparser::Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.ok()?;
                    if let wasmparser::TypeRef::Func(t) = import.ty {
                        imports.push((import.module.into(), import.name.into(), t));
                    }
                }
            }
            _ => {}
        }
    }
    let mut events: Vec<Event> = Vec::new();
    let mut conflicting: Vec<(String, String)> = Vec::new();
    for (module, field, ty) in imports {
        let Some(wasmparser::CompositeInnerType::Func(f)) = types.get(ty as usize) else {
            continue;
        };
        let params: Option<Vec<ValType>> = f.params().iter().map(val_type).collect();
        let results: Option<Vec<ValType>> = f.results().iter().map(val_type).collect();
        let (Some(params), Some(results)) = (params, results) else {
            continue;
        };
        let event = Event {
            name: format!("e{}", events.len()),
            module: module.clone(),
            field: field.clone(),
            params: params
                .iter()
                .enumerate()
                .map(|(i, t)| Param {
                    name: format!("p{i}"),
                    ty: match t {
                        ValType::I32 => ParamType::I32,
                        ValType::I64 => ParamType::I64,
                        ValType::F32 => ParamType::F32,
                        ValType::F64 => ParamType::F64,
                    },
                })
                .collect(),
            results,
        };
        match events
            .iter()
            .find(|e| e.module == module && e.field == field)
        {
            Some(seen) if seen.params == event.params && seen.results == event.results => {}
            Some(_) => conflicting.push((module, field)),
            None => events.push(event),
        }
    }
    events.retain(|e| !conflicting.contains(&(e.module.clone(), e.field.clone())));
    if events.is_empty() {
        return None;
    }
    let transitions = (0..events.len() as u32)
        .map(|event| Transition {
            event,
            phase: Phase::Pre,
            from: vec![0],
            guard: Expr::Bool(true),
            updates: vec![],
            set_updates: vec![],
            verdict: Verdict::Audit,
            next: None,
            reason: Some("spec import".into()),
            origin: "spec.pol:1:1".into(),
        })
        .collect();
    Some(Program {
        version: IR_VERSION,
        events,
        policies: vec![Policy {
            name: "audit_all".into(),
            states: vec![State {
                name: "start".into(),
            }],
            initial: 0,
            vars: vec![],
            transitions,
            allow_shared_memory_strings: true,
            // Spec modules import no WASI `fd_write` to deliver audit lines through.
            allow_undelivered_audits: true,
            sets: vec![],
        }],
    })
}
