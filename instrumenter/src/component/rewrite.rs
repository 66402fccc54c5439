//! The second pass: the component re-encoded with the monitor inserted.
//!
//! Inserted at the start (before every original item): the hooks' instance type, import,
//! function aliases and lowerings (host hooks only); the trampoline, monitor and fixup
//! modules; the trampoline instance and its functions and table. Without host hooks the
//! start block follows the component's leading type, import and alias sections
//! (`read::Prefix`), copied byte for byte: they name no core item, so nothing moves. Inserted right after
//! the last monitored lowering (*P*): one instance per import module of the monitor, the
//! monitor instance, its wrappers, and the fixup instance that fills the trampolines'
//! table; when the copier serves `get-directories` (`build::copier`), its instance and
//! its `get-directories` come first there, and at the very end (where new items move no
//! original one) the second lowering of `get-directories` into the copier's memory and
//! the instance that puts it in the copier's table.
//! Every original index in a space that gained items is moved past them
//! ([`Remap`]); every reference to a monitored lowering names its trampoline before *P*
//! and its wrapper after. Core modules keep their bytes; nested components are
//! re-encoded unchanged but for outer aliases into the top level.
use std::collections::HashMap;
use std::convert::Infallible;

use policy_lang::ir::{ParamType, Program};
use wasm_encoder::reencode::{Error as ReencodeError, Reencode, ReencodeComponent};
use wasm_encoder::{
    Alias, CanonicalFunctionSection, CanonicalOption, Component, ComponentAliasSection,
    ComponentExportKind, ComponentImportSection, ComponentSectionId, ComponentTypeRef,
    ComponentTypeSection, ComponentValType, ExportKind, InstanceSection, InstanceType, ModuleArg,
    PrimitiveValType, RawSection,
};
use wasmparser::{Payload, TypeRef};

use super::build::{self, func_export, MEMORY_IMPORT, TABLE_EXPORT};
use super::read::{self, Counts, Plan};
use crate::manifest::HOOK_MODULE;
use crate::report::ComponentReport;
use crate::WeaveError;

/// Where original indices go: `start` items were inserted before every original one,
/// `at_p` before every original one defined after *P* (`cut` are those up to *P*).
struct Remap {
    depth: u32,
    start: Counts,
    at_p: Counts,
    cut: Counts,
    /// Set once *P* is passed: references to monitored lowerings name the wrappers.
    after_p: bool,
    /// Off in the name section: names stay with the items they named.
    substituting: bool,
    /// By original core function index of a monitored lowering: its trampoline and its
    /// wrapper (new indices).
    subst: HashMap<u32, (u32, u32)>,
    report: ComponentReport,
}

macro_rules! shifted {
    ($self:ident, $old:expr, $space:ident) => {
        $old + $self.start.$space
            + if $old >= $self.cut.$space {
                $self.at_p.$space
            } else {
                0
            }
    };
}

impl Remap {
    fn core_func(&self, old: u32) -> u32 {
        shifted!(self, old, core_funcs)
    }
}

impl Reencode for Remap {
    type Error = Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError<Infallible>> {
        if self.depth > 0 {
            return Ok(func);
        }
        if self.substituting {
            if let Some(&(trampoline, wrapper)) = self.subst.get(&func) {
                return Ok(if self.after_p {
                    self.report.to_wrappers += 1;
                    wrapper
                } else {
                    self.report.to_trampolines += 1;
                    trampoline
                });
            }
        }
        Ok(self.core_func(func))
    }

    fn table_index(&mut self, table: u32) -> Result<u32, ReencodeError<Infallible>> {
        Ok(if self.depth > 0 {
            table
        } else {
            shifted!(self, table, core_tables)
        })
    }
}

impl ReencodeComponent for Remap {
    fn component_type_index(&mut self, ty: u32) -> u32 {
        if self.depth > 0 {
            ty
        } else {
            shifted!(self, ty, types)
        }
    }

    fn component_instance_index(&mut self, i: u32) -> u32 {
        if self.depth > 0 {
            i
        } else {
            shifted!(self, i, instances)
        }
    }

    fn component_func_index(&mut self, f: u32) -> u32 {
        if self.depth > 0 {
            f
        } else {
            shifted!(self, f, funcs)
        }
    }

    fn module_index(&mut self, m: u32) -> u32 {
        if self.depth > 0 {
            m
        } else {
            shifted!(self, m, core_modules)
        }
    }

    fn instance_index(&mut self, i: u32) -> u32 {
        if self.depth > 0 {
            i
        } else {
            shifted!(self, i, core_instances)
        }
    }

    fn outer_component_type_index(&mut self, count: u32, ty: u32) -> u32 {
        if count == self.depth {
            shifted!(self, ty, types)
        } else {
            ty
        }
    }

    fn outer_module_index(&mut self, count: u32, m: u32) -> u32 {
        if count == self.depth {
            shifted!(self, m, core_modules)
        } else {
            m
        }
    }

    fn push_depth(&mut self) {
        self.depth += 1;
    }

    fn pop_depth(&mut self) {
        self.depth -= 1;
    }

    // Core modules keep their bytes (and their own index spaces).
    fn parse_component_submodule(
        &mut self,
        component: &mut Component,
        _parser: wasmparser::Parser,
        module: &[u8],
    ) -> Result<(), ReencodeError<Infallible>> {
        component.section(&RawSection {
            id: ComponentSectionId::CoreModule as u8,
            data: module,
        });
        if self.depth == 0 {
            self.report.modules_kept += 1;
        }
        Ok(())
    }

    fn parse_component_custom_section(
        &mut self,
        component: &mut Component,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), ReencodeError<Infallible>> {
        let was = std::mem::replace(&mut self.substituting, false);
        let r = wasm_encoder::reencode::component_utils::parse_component_custom_section(
            self, component, section,
        );
        self.substituting = was;
        r
    }
}

/// The core modules inserted at the start, before every original one: the trampolines,
/// the monitor and the fixup, and with [`Plan::preopens`] the copier and its fill
/// (`build::copier`).
pub(crate) fn inserted_modules(plan: &Plan) -> usize {
    3 + 2 * usize::from(plan.preopens.is_some())
}

/// A hook import of the monitor: its field, the number of its core parameters, and how
/// many of them are string pairs (the last ones).
struct Hook {
    field: String,
    params: usize,
    strings: usize,
}

/// The monitor's imports of one module, in order.
type ModuleImports = (String, Vec<(String, TypeRef)>);

/// The monitor's imports, grouped by module, in order.
fn monitor_imports(monitor: &[u8]) -> Result<Vec<ModuleImports>, WeaveError> {
    let mut out: Vec<ModuleImports> = Vec::new();
    for p in wasmparser::Parser::new(0).parse_all(monitor) {
        let p = p.map_err(|e| internal(format!("the monitor does not parse: {e}")))?;
        let Payload::ImportSection(r) = p else {
            continue;
        };
        for i in r.into_imports() {
            let i = i.map_err(|e| internal(e.to_string()))?;
            let entry = (i.name.to_string(), i.ty);
            match out.iter_mut().find(|(m, _)| m == i.module) {
                Some((_, fields)) => fields.push(entry),
                None => out.push((i.module.to_string(), vec![entry])),
            }
        }
    }
    Ok(out)
}

fn internal(message: String) -> WeaveError {
    WeaveError::Internal { message }
}

/// The monitor's hook imports (host hooks only), with their parameter counts.
fn hooks(monitor: &[u8], view: &Program, memory: bool) -> Result<Vec<Hook>, WeaveError> {
    let mut types = Vec::new();
    let mut out = Vec::new();
    for p in wasmparser::Parser::new(0).parse_all(monitor) {
        match p.map_err(|e| internal(e.to_string()))? {
            Payload::TypeSection(r) => {
                for t in r.into_iter_err_on_gc_types() {
                    types.push(t.map_err(|e| internal(e.to_string()))?);
                }
            }
            Payload::ImportSection(r) => {
                for i in r.into_imports() {
                    let i = i.map_err(|e| internal(e.to_string()))?;
                    if i.module != HOOK_MODULE {
                        continue;
                    }
                    let TypeRef::Func(t) = i.ty else {
                        return Err(internal(format!("hook {} is not a function", i.name)));
                    };
                    let params = types
                        .get(t as usize)
                        .map(|f: &wasmparser::FuncType| f.params().len())
                        .ok_or_else(|| internal(format!("hook {} has no type", i.name)))?;
                    let event = hook_event(i.name)?;
                    // Without a memory the monitor passes no strings to its hooks.
                    let strings = match view.events.get(event as usize) {
                        Some(e) if memory => {
                            e.params.iter().filter(|p| p.ty == ParamType::Str).count()
                        }
                        _ => 0,
                    };
                    out.push(Hook {
                        field: i.name.to_string(),
                        params,
                        strings,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The event of the core hook `field` (`hook:3`).
fn hook_event(field: &str) -> Result<u32, WeaveError> {
    field
        .strip_prefix("hook:")
        .and_then(|e| e.parse::<u32>().ok())
        .ok_or_else(|| internal(format!("unexpected hook import `{field}`")))
}

/// The component function name of the core hook `field` (`hook:3` is `hook-e3`).
fn hook_func_name(field: &str) -> Result<String, WeaveError> {
    hook_event(field).map(super::hook_name)
}

/// Re-encodes the component `input` with `monitor` (the woven stub) interposed.
pub(crate) fn rewrite(
    input: &[u8],
    plan: &Plan,
    monitor: &[u8],
    view: &Program,
    prefix: Option<&read::Prefix>,
) -> Result<(Vec<u8>, ComponentReport), WeaveError> {
    let n = plan.imports.len() as u32;
    let hooks = hooks(monitor, view, plan.memory.is_some())?;
    let n_h = hooks.len() as u32;
    if n_h > 0 && prefix.is_some() {
        return Err(internal(
            "host hooks are inserted before every original item, so no prefix is kept".into(),
        ));
    }
    // The core hook type is (i32, i32, i64 * k, i64, (i32, i32) * strings); the canonical
    // ABI passes at most 16 flat parameters directly.
    if let Some(h) = hooks.iter().find(|h| h.params > 16) {
        return Err(WeaveError::Component {
            why: format!(
                "the host hook {} would take {} parameters, more than a component function \
                 passes directly (16)",
                h.field, h.params
            ),
        });
    }
    let imports = monitor_imports(monitor)?;

    let copier = plan.preopens;
    let c = u32::from(copier.is_some());
    let start = Counts {
        core_modules: inserted_modules(plan) as u32,
        core_instances: 1,
        core_funcs: n,
        core_tables: 1,
        types: u32::from(n_h > 0),
        funcs: n_h,
        instances: u32::from(n_h > 0),
    };
    let cut = plan.counts;
    let n_mods = imports.len() as u32;
    // Hooks are lowered at P too: their strings are read from the memory the monitored
    // lowerings read, which exists only from there on.
    // The copier (when `get-directories` is served) adds its argument instance, its
    // instance and its `get-directories` before the monitor's instances.
    let at_p = Counts {
        core_instances: n_mods + 3 + 2 * c,
        core_funcs: n_h + n + c,
        ..Counts::default()
    };
    let copier_i = cut.core_instances + start.core_instances;
    let base_i = copier_i + 2 * c;
    let base_hooks = cut.core_funcs + start.core_funcs;
    let copier_f = base_hooks + n_h;
    let base_f = copier_f + c;
    let mut subst = HashMap::new();
    for (i, imp) in plan.imports.iter().enumerate() {
        for &l in &imp.lowerings {
            subst.insert(l, (i as u32, base_f + i as u32));
        }
    }
    let mut r = Remap {
        depth: 0,
        start,
        at_p,
        cut,
        after_p: false,
        substituting: true,
        subst,
        report: ComponentReport {
            lowerings: plan.imports.iter().map(|i| i.lowerings.len() as u32).sum(),
            ..ComponentReport::default()
        },
    };

    let mut out = Component::new();
    // The prefix, byte for byte: nothing inserted moves an index it names (see
    // `read::Prefix`).
    let kept = prefix.map_or(0, |p| p.sections.len());
    for (id, range) in prefix.iter().flat_map(|p| &p.sections) {
        out.section(&RawSection {
            id: *id,
            data: &input[range.clone()],
        });
    }
    // The start block.
    if n_h > 0 {
        let mut ity = InstanceType::new();
        // Local type 0 is `list<u8>`; each hook's function type follows its export.
        ity.ty().defined_type().list(PrimitiveValType::U8);
        for (local_type, h) in (1..).zip(&hooks) {
            let s32 = ComponentValType::Primitive(PrimitiveValType::S32);
            let s64 = ComponentValType::Primitive(PrimitiveValType::S64);
            let ints = h.params - 2 * h.strings;
            let mut params: Vec<(String, ComponentValType)> = (0..ints)
                .map(|k| match k {
                    0 => ("kind".to_string(), s32),
                    1 => ("code".to_string(), s32),
                    k if k + 1 == ints => ("extra".to_string(), s64),
                    k => (format!("p{}", k - 2), s64),
                })
                .collect();
            params.extend((0..h.strings).map(|k| (format!("s{k}"), ComponentValType::Type(0))));
            ity.ty()
                .function()
                .params(params.iter().map(|(n, t)| (n.as_str(), *t)))
                .result(None);
            ity.export(
                hook_func_name(&h.field)?.as_str(),
                ComponentTypeRef::Func(local_type),
            );
        }
        let mut types = ComponentTypeSection::new();
        types.instance(&ity);
        out.section(&types);
        let mut imp = ComponentImportSection::new();
        imp.import(super::HOOK_INTERFACE, ComponentTypeRef::Instance(0));
        out.section(&imp);
        let mut aliases = ComponentAliasSection::new();
        for h in &hooks {
            aliases.alias(Alias::InstanceExport {
                instance: 0,
                kind: ComponentExportKind::Func,
                name: &hook_func_name(&h.field)?,
            });
        }
        out.section(&aliases);
    }
    let trampolines = build::trampolines(plan);
    let fixup = build::fixup(plan);
    let mut modules = vec![trampolines, monitor.to_vec(), fixup];
    if copier.is_some() {
        let (_, ty) = plan.memory.as_ref().ok_or_else(|| {
            internal("get-directories is served, but no memory is lowered into".into())
        })?;
        modules.push(build::copier(&wasm_encoder::MemoryType {
            minimum: ty.initial,
            maximum: ty.maximum,
            memory64: ty.memory64,
            shared: ty.shared,
            page_size_log2: ty.page_size_log2,
        }));
        modules.push(build::copier_fill());
    }
    for m in &modules {
        out.section(&RawSection {
            id: ComponentSectionId::CoreModule as u8,
            data: m,
        });
    }
    let mut inst = InstanceSection::new();
    inst.instantiate(0, Vec::<(&str, ModuleArg)>::new());
    out.section(&inst);
    let mut aliases = ComponentAliasSection::new();
    for i in 0..n as usize {
        aliases.alias(Alias::CoreInstanceExport {
            instance: 0,
            kind: ExportKind::Func,
            name: &func_export(i),
        });
    }
    aliases.alias(Alias::CoreInstanceExport {
        instance: 0,
        kind: ExportKind::Table,
        name: TABLE_EXPORT,
    });
    out.section(&aliases);

    // The block at P, once the last monitored lowering is defined.
    let p_block = |out: &mut Component, r: &Remap| -> Result<(), WeaveError> {
        if n_h > 0 {
            let mut canon = CanonicalFunctionSection::new();
            for (j, h) in hooks.iter().enumerate() {
                match plan.memory {
                    Some((m, _)) if h.strings > 0 => {
                        canon.lower(j as u32, [CanonicalOption::Memory(m)]);
                    }
                    _ => {
                        canon.lower(j as u32, []);
                    }
                }
            }
            out.section(&canon);
        }
        if let Some(p) = copier {
            // The copier, with the component's memory and realloc.
            let mut inst = InstanceSection::new();
            let (memory, _) = plan.memory.expect("checked above");
            inst.export_items([
                ("memory", ExportKind::Memory, memory),
                ("realloc", ExportKind::Func, r.core_func(p.realloc)),
            ]);
            inst.instantiate(COPIER, [("guest", ModuleArg::Instance(copier_i))]);
            out.section(&inst);
            let mut aliases = ComponentAliasSection::new();
            aliases.alias(Alias::CoreInstanceExport {
                instance: copier_i + 1,
                kind: ExportKind::Func,
                name: "get-directories",
            });
            out.section(&aliases);
        }
        let mut inst = InstanceSection::new();
        let mut args: Vec<(String, ModuleArg)> = Vec::new();
        for (j, (module, fields)) in imports.iter().enumerate() {
            let mut exports: Vec<(String, ExportKind, u32)> = Vec::new();
            for (field, ty) in fields {
                let provided = match ty {
                    TypeRef::Memory(_) if (module.as_str(), field.as_str()) == MEMORY_IMPORT => {
                        plan.memory.map(|(m, _)| (ExportKind::Memory, m))
                    }
                    TypeRef::Func(_) if module == HOOK_MODULE => hooks
                        .iter()
                        .position(|h| &h.field == field)
                        .map(|k| (ExportKind::Func, base_hooks + k as u32)),
                    TypeRef::Func(_) => plan
                        .imports
                        .iter()
                        .position(|i| &i.module == module && &i.field == field)
                        .map(|k| match copier {
                            // Served by the copier, not by the lowering into the
                            // component's memory.
                            Some(p) if p.import == k => (ExportKind::Func, copier_f),
                            _ => (ExportKind::Func, r.core_func(plan.imports[k].lowerings[0])),
                        }),
                    _ => None,
                };
                let Some((kind, index)) = provided else {
                    return Err(WeaveError::Component {
                        why: format!(
                            "the monitor needs `{module}.{field}`, which a component cannot \
                             give it (a WASI preview 1 function the policies' descriptor \
                             tracking or messages use)"
                        ),
                    });
                };
                exports.push((field.clone(), kind, index));
            }
            inst.export_items(exports.iter().map(|(n, k, i)| (n.as_str(), *k, *i)));
            args.push((module.clone(), ModuleArg::Instance(base_i + j as u32)));
        }
        let monitor_instance = base_i + n_mods;
        inst.instantiate(MONITOR, args.iter().map(|(n, a)| (n.as_str(), *a)));
        out.section(&inst);
        let mut aliases = ComponentAliasSection::new();
        for i in 0..n as usize {
            aliases.alias(Alias::CoreInstanceExport {
                instance: monitor_instance,
                kind: ExportKind::Func,
                name: &func_export(i),
            });
        }
        out.section(&aliases);
        let mut inst = InstanceSection::new();
        let mut exports: Vec<(String, ExportKind, u32)> =
            vec![(TABLE_EXPORT.to_string(), ExportKind::Table, 0)];
        exports.extend((0..n).map(|i| (func_export(i as usize), ExportKind::Func, base_f + i)));
        inst.export_items(exports.iter().map(|(n, k, i)| (n.as_str(), *k, *i)));
        inst.instantiate(FIXUP, [("", ModuleArg::Instance(monitor_instance + 1))]);
        out.section(&inst);
        Ok(())
    };

    let reencode = |e: ReencodeError<Infallible>| WeaveError::Internal {
        message: format!("re-encoding the component: {e}"),
    };
    for (section, payload) in read::top_level(input)?.into_iter().enumerate() {
        // Section 0 is the header; the prefix follows.
        if (1..=kept).contains(&section) {
            continue;
        }
        if section != plan.at.0 {
            // Without host hooks no component-level index moves: a section naming none
            // other is copied as it is.
            if n_h == 0 {
                if let Some((id, range)) = read::core_free(&payload) {
                    out.section(&RawSection {
                        id,
                        data: &input[range],
                    });
                    continue;
                }
            }
            r.parse_component_payload(&mut out, payload, input)
                .map_err(reencode)?;
            continue;
        }
        let Payload::ComponentCanonicalSection(reader) = payload else {
            return Err(internal(
                "the monitor's place is not a canonical section".into(),
            ));
        };
        let mut canon = CanonicalFunctionSection::new();
        for (item, f) in reader.into_iter().enumerate() {
            let f = f.map_err(WeaveError::malformed)?;
            r.parse_component_canonical(&mut canon, f)
                .map_err(reencode)?;
            if item == plan.at.1 {
                out.section(&canon);
                canon = CanonicalFunctionSection::new();
                p_block(&mut out, &r)?;
                r.after_p = true;
            }
        }
        if !canon.is_empty() {
            out.section(&canon);
        }
    }
    if let Some(p) = copier {
        // At the end, where new items move no original one: `get-directories` lowered
        // again into the copier's memory through the copier's realloc, put in the
        // copier's table.
        let memory = plan.core_memories;
        let realloc = shifted!(r, plan.totals.core_funcs, core_funcs);
        let table = shifted!(r, plan.totals.core_tables, core_tables);
        let instance = shifted!(r, plan.totals.core_instances, core_instances);
        let copier_instance = copier_i + 1;
        let mut aliases = ComponentAliasSection::new();
        for (kind, name) in [
            (ExportKind::Memory, "memory"),
            (ExportKind::Func, "realloc"),
            (ExportKind::Table, TABLE_EXPORT),
        ] {
            aliases.alias(Alias::CoreInstanceExport {
                instance: copier_instance,
                kind,
                name,
            });
        }
        out.section(&aliases);
        let mut canon = CanonicalFunctionSection::new();
        canon.lower(
            shifted!(r, p.func, funcs),
            [
                CanonicalOption::Memory(memory),
                CanonicalOption::Realloc(realloc),
                CanonicalOption::UTF8,
            ],
        );
        out.section(&canon);
        let mut inst = InstanceSection::new();
        inst.export_items([
            (TABLE_EXPORT, ExportKind::Table, table),
            ("f", ExportKind::Func, realloc + 1),
        ]);
        inst.instantiate(COPIER_FILL, [("", ModuleArg::Instance(instance))]);
        out.section(&inst);
    }
    Ok((out.finish(), r.report))
}

/// Indices of the inserted core modules (see [`inserted_modules`]).
const MONITOR: u32 = 1;
const FIXUP: u32 = 2;
const COPIER: u32 = 3;
const COPIER_FILL: u32 = 4;
