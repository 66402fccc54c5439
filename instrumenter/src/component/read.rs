//! The first pass over a component: its top-level index spaces, where every lowering of
//! an imported function comes from, and every use of an import that would hand it to
//! someone other than `canon lower`; then the plan, which decides what is monitored.
use std::collections::BTreeMap;

use policy_lang::ir::{EventId, Program};
use wasmparser::component_types::{ComponentAnyTypeId, ComponentEntityType, ResourceId};
use wasmparser::types::Types;
use wasmparser::{
    CanonicalFunction, CanonicalOption, Chunk, ComponentAlias, ComponentExternalKind,
    ComponentInstance, ComponentOuterAliasKind, ComponentTypeRef, ExternalKind, FuncType,
    MemoryType, Parser, Payload,
};

use crate::WeaveError;

/// The import module of a function a component imports directly (not from an instance),
/// as `wit-component` names it for core modules.
pub const ROOT: &str = "$root";

/// Sizes of the top-level index spaces the rewrite moves items in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub core_modules: u32,
    pub core_instances: u32,
    pub core_funcs: u32,
    pub core_tables: u32,
    pub types: u32,
    pub funcs: u32,
    pub instances: u32,
}

/// Where a component function comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FuncOrigin {
    /// Exported by an imported instance: `(interface, function)`, or [`ROOT`] and the
    /// import name for a function imported directly.
    Import {
        module: String,
        field: String,
    },
    Other,
}

/// A `canon lower` of an imported function.
#[derive(Clone, Debug)]
pub(crate) struct Lowering {
    /// The core function it defines.
    pub core_func: u32,
    /// The component function it lowers (`None` for a `resource.drop`).
    pub func: Option<u32>,
    pub module: String,
    pub field: String,
    pub options: Vec<CanonicalOption>,
    /// Where it is: the index of its section among the top-level payloads
    /// ([`top_level`]) and its index in the section.
    pub at: (usize, usize),
    pub offset: usize,
    /// The index spaces right after it.
    pub counts: Counts,
}

/// A use of an imported instance or function that is not `alias export` or `canon lower`.
#[derive(Clone, Debug)]
pub(crate) struct Escape {
    /// The import, as `(module, field)` for a function or `(instance name, "")`.
    pub instance: Option<u32>,
    pub func: Option<u32>,
    pub how: &'static str,
    pub offset: usize,
}

/// What the rewrite needs to know of the component.
pub(crate) struct Component {
    pub types: Types,
    /// The imported instances by component instance index: their import names.
    pub imported_instances: BTreeMap<u32, String>,
    pub funcs: Vec<FuncOrigin>,
    /// By core memory index: `(core instance, export name)` it is aliased from.
    pub memories: Vec<Option<(u32, String)>>,
    pub lowerings: Vec<Lowering>,
    pub escapes: Vec<Escape>,
    /// Every function the component imports, as `(module, field)`.
    pub imported: Vec<(String, String)>,
    /// The names of its top-level imports that can be called (functions and instances).
    pub callable_imports: Vec<String>,
    /// Its top-level exports other than types, by name and kind.
    pub exports: Vec<(String, ComponentExternalKind)>,
    /// The index spaces at its end.
    pub totals: Counts,
}

impl Component {
    pub fn imported_functions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.imported.iter().map(|(m, f)| (m.as_str(), f.as_str()))
    }
}

/// The top-level payloads of `input`, nested modules and components as one payload each.
pub(crate) fn top_level(input: &[u8]) -> Result<Vec<Payload<'_>>, WeaveError> {
    let mut parser = Parser::new(0);
    let mut remaining = input;
    let mut out = Vec::new();
    loop {
        let (consumed, payload) = match parser
            .parse(remaining, true)
            .map_err(WeaveError::malformed)?
        {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            Chunk::NeedMoreData(_) => {
                return Err(WeaveError::Malformed {
                    offset: input.len(),
                    message: "unexpected end of the component".into(),
                })
            }
        };
        remaining = &remaining[consumed..];
        if let Payload::ModuleSection {
            unchecked_range, ..
        }
        | Payload::ComponentSection {
            unchecked_range, ..
        } = &payload
        {
            remaining = &remaining[unchecked_range.len()..];
        }
        let end = matches!(payload, Payload::End(_));
        out.push(payload);
        if end {
            return Ok(out);
        }
    }
}

/// The leading component-level declarations of a component: its first sections while
/// they name no core item ([`core_free`]; the WASI imports and their types, in a
/// component a toolchain made). A weave without host hooks inserts nothing among them and
/// moves none of their indices, so the woven component starts with these same sections,
/// byte for byte, and one validation of them ([`Prefix::bytes`]) serves the output too.
pub(crate) struct Prefix {
    /// Each section's id and contents in the input.
    pub sections: Vec<(u8, std::ops::Range<usize>)>,
    /// A component made of them alone (header included).
    pub bytes: Vec<u8>,
}

/// The [`Prefix`] of `input`; `None` when it has none.
pub(crate) fn prefix(input: &[u8]) -> Result<Option<Prefix>, WeaveError> {
    let sections: Vec<(u8, std::ops::Range<usize>)> = top_level(input)?
        .iter()
        .skip(1)
        .map_while(core_free)
        .collect();
    let mut out = wasm_encoder::Component::new();
    for (id, range) in &sections {
        out.section(&wasm_encoder::RawSection {
            id: *id,
            data: &input[range.clone()],
        });
    }
    Ok((!sections.is_empty()).then(|| Prefix {
        sections,
        bytes: out.finish(),
    }))
}

/// A top-level section that defines and names no core item, with its id and contents:
/// a type section, an import section that imports no core module, or an alias section
/// of component instances' exports that are no core modules. Inserting core items before
/// it, or anywhere, moves nothing it names or defines; without host hooks the weave
/// inserts no component-level item, so such a section is copied as it is.
pub(crate) fn core_free(payload: &Payload<'_>) -> Option<(u8, std::ops::Range<usize>)> {
    use wasm_encoder::ComponentSectionId as Id;
    let (id, range) = match payload {
        Payload::ComponentTypeSection(r) => (Id::Type, r.range()),
        Payload::ComponentImportSection(r) => {
            let core_free = r
                .clone()
                .into_iter()
                .all(|i| i.is_ok_and(|i| !matches!(i.ty, ComponentTypeRef::Module(_))));
            (core_free.then_some(Id::Import)?, r.range())
        }
        Payload::ComponentAliasSection(r) => {
            let core_free = r.clone().into_iter().all(|a| {
                matches!(a, Ok(ComponentAlias::InstanceExport { kind, .. }) if kind != ComponentExternalKind::Module)
            });
            (core_free.then_some(Id::Alias)?, r.range())
        }
        _ => return None,
    };
    Some((id as u8, range))
}

/// The function bodies of a component's core modules, to validate: the validator that
/// checks each one, and the body.
pub(crate) type Bodies<'a> = Vec<(
    wasmparser::FuncToValidate<wasmparser::ValidatorResources>,
    wasmparser::FunctionBody<'a>,
)>;

/// Validates the component's structure and reads what weaving it needs. Its function
/// bodies are returned unvalidated: the caller validates them (on another thread, while
/// it weaves) and refuses the input if one is invalid.
pub(crate) fn read(input: &[u8]) -> Result<(Component, Bodies<'_>), WeaveError> {
    let mut validator = wasmparser::Validator::new_with_features(super::features());
    let mut bodies = Vec::new();
    let mut types = None;
    for payload in Parser::new(0).parse_all(input) {
        let payload = payload.map_err(WeaveError::malformed)?;
        // A monitor inside already (or something claiming to be one): weave the original.
        if let Payload::CustomSection(c) = &payload {
            if c.name() == crate::manifest::SECTION {
                return Err(WeaveError::AlreadyWoven {
                    section: crate::manifest::SECTION,
                });
            }
        }
        match validator
            .payload(&payload)
            .map_err(crate::validate::invalid)?
        {
            wasmparser::ValidPayload::Func(f, body) => bodies.push((f, body)),
            // The last end is the component's own.
            wasmparser::ValidPayload::End(t) => types = Some(t),
            _ => {}
        }
    }
    let types = types.ok_or_else(|| WeaveError::Component {
        why: "the component ends before its end".into(),
    })?;
    let mut c = Component {
        types,
        imported_instances: BTreeMap::new(),
        funcs: Vec::new(),
        memories: Vec::new(),
        lowerings: Vec::new(),
        escapes: Vec::new(),
        imported: Vec::new(),
        callable_imports: Vec::new(),
        exports: Vec::new(),
        totals: Counts::default(),
    };
    let mut n = Counts::default();
    let m = WeaveError::malformed;
    // The resource types imported instances export: `canon resource.drop` of one is a
    // call into the host like a lowering (`[resource-drop]R` of that interface).
    let mut resources: BTreeMap<ResourceId, (String, String)> = BTreeMap::new();
    for (section, payload) in top_level(input)?.into_iter().enumerate() {
        match payload {
            Payload::ComponentImportSection(r) => {
                for imp in r {
                    let imp = imp.map_err(m)?;
                    if matches!(
                        imp.ty,
                        ComponentTypeRef::Func(_) | ComponentTypeRef::Instance(_)
                    ) {
                        c.callable_imports.push(imp.name.name.to_string());
                    }
                    match imp.ty {
                        ComponentTypeRef::Instance(_) => {
                            let index = n.instances;
                            let name = imp.name.name.to_string();
                            let id = c.types.as_ref().component_instance_at(index);
                            for (field, item) in &c.types[id].exports {
                                match item.ty {
                                    ComponentEntityType::Func(_) => {
                                        c.imported.push((name.clone(), field.clone()));
                                    }
                                    ComponentEntityType::Type {
                                        created: ComponentAnyTypeId::Resource(r),
                                        ..
                                    } => {
                                        // Interfaces that `use` a resource export it too;
                                        // the drop is named by the one that defines it.
                                        let drop = format!("[resource-drop]{field}");
                                        let defines =
                                            policy_lang::wit::function(&name, &drop).is_some();
                                        if defines || !resources.contains_key(&r.resource()) {
                                            resources.insert(
                                                r.resource(),
                                                (name.clone(), field.clone()),
                                            );
                                        }
                                    }
                                    _ => {}
                                }
                            }
                            c.imported_instances.insert(index, name);
                            n.instances += 1;
                        }
                        ComponentTypeRef::Func(_) => {
                            let field = imp.name.name.to_string();
                            c.imported.push((ROOT.into(), field.clone()));
                            c.funcs.push(FuncOrigin::Import {
                                module: ROOT.into(),
                                field,
                            });
                            n.funcs += 1;
                        }
                        ComponentTypeRef::Module(_) => n.core_modules += 1,
                        ComponentTypeRef::Type(_) => n.types += 1,
                        ComponentTypeRef::Component(_) | ComponentTypeRef::Value(_) => {}
                    }
                }
            }
            Payload::ComponentAliasSection(r) => {
                for a in r.into_iter_with_offsets() {
                    let (offset, a) = a.map_err(m)?;
                    match a {
                        ComponentAlias::InstanceExport {
                            kind,
                            instance_index,
                            name,
                        } => {
                            let imported = c.imported_instances.get(&instance_index);
                            match kind {
                                ComponentExternalKind::Func => {
                                    c.funcs.push(match imported {
                                        Some(module) => FuncOrigin::Import {
                                            module: module.clone(),
                                            field: name.to_string(),
                                        },
                                        None => FuncOrigin::Other,
                                    });
                                    n.funcs += 1;
                                }
                                ComponentExternalKind::Instance => {
                                    if imported.is_some() {
                                        c.escapes.push(Escape {
                                            instance: Some(instance_index),
                                            func: None,
                                            how: "an instance it exports is aliased, which irm cannot follow",
                                            offset,
                                        });
                                    }
                                    n.instances += 1;
                                }
                                ComponentExternalKind::Module => n.core_modules += 1,
                                ComponentExternalKind::Type => n.types += 1,
                                ComponentExternalKind::Component | ComponentExternalKind::Value => {
                                }
                            }
                        }
                        ComponentAlias::CoreInstanceExport {
                            kind,
                            instance_index,
                            name,
                        } => match kind {
                            ExternalKind::Func | ExternalKind::FuncExact => n.core_funcs += 1,
                            ExternalKind::Table => n.core_tables += 1,
                            ExternalKind::Memory => {
                                c.memories.push(Some((instance_index, name.to_string())))
                            }
                            ExternalKind::Global | ExternalKind::Tag => {}
                        },
                        ComponentAlias::Outer { kind, .. } => match kind {
                            ComponentOuterAliasKind::CoreModule => n.core_modules += 1,
                            ComponentOuterAliasKind::Type => n.types += 1,
                            ComponentOuterAliasKind::CoreType
                            | ComponentOuterAliasKind::Component => {}
                        },
                    }
                }
            }
            Payload::ComponentCanonicalSection(r) => {
                for (item, f) in r.into_iter_with_offsets().enumerate() {
                    let (offset, f) = f.map_err(m)?;
                    match f {
                        CanonicalFunction::Lift { .. } => {
                            c.funcs.push(FuncOrigin::Other);
                            n.funcs += 1;
                        }
                        CanonicalFunction::Lower {
                            func_index,
                            options,
                        } => {
                            let core_func = n.core_funcs;
                            n.core_funcs += 1;
                            if let Some(FuncOrigin::Import { module, field }) =
                                c.funcs.get(func_index as usize)
                            {
                                c.lowerings.push(Lowering {
                                    core_func,
                                    func: Some(func_index),
                                    module: module.clone(),
                                    field: field.clone(),
                                    options: options.into_vec(),
                                    at: (section, item),
                                    offset,
                                    counts: n,
                                });
                            }
                        }
                        CanonicalFunction::ResourceDrop { resource } => {
                            let core_func = n.core_funcs;
                            n.core_funcs += 1;
                            let ty = c.types.as_ref().component_any_type_at(resource);
                            if let ComponentAnyTypeId::Resource(r) = ty {
                                if let Some((module, name)) = resources.get(&r.resource()) {
                                    c.lowerings.push(Lowering {
                                        core_func,
                                        func: None,
                                        module: module.clone(),
                                        field: format!("[resource-drop]{name}"),
                                        options: Vec::new(),
                                        at: (section, item),
                                        offset,
                                        counts: n,
                                    });
                                }
                            }
                        }
                        _ => n.core_funcs += 1,
                    }
                }
            }
            // Counted, not read: the validator has read them (a WASI import's instance
            // type is large).
            Payload::InstanceSection(r) => n.core_instances += r.count(),
            Payload::ComponentTypeSection(r) => n.types += r.count(),
            Payload::ComponentInstanceSection(r) => {
                for i in r.into_iter_with_offsets() {
                    let (offset, i) = i.map_err(m)?;
                    let mut uses: Vec<(ComponentExternalKind, u32)> = Vec::new();
                    let how = match i {
                        ComponentInstance::Instantiate { args, .. } => {
                            uses.extend(args.iter().map(|a| (a.kind, a.index)));
                            "it is passed to a nested component, whose core code irm does not weave"
                        }
                        ComponentInstance::FromExports(exports) => {
                            uses.extend(exports.iter().map(|e| (e.kind, e.index)));
                            "it is bundled into an instance, which irm cannot follow"
                        }
                    };
                    for (kind, index) in uses {
                        c.note_use(kind, index, how, offset);
                    }
                    n.instances += 1;
                }
            }
            Payload::ComponentExportSection(r) => {
                for e in r.into_iter_with_offsets() {
                    let (offset, e) = e.map_err(m)?;
                    c.note_use(e.kind, e.index, "it is exported from the component", offset);
                    if e.kind != ComponentExternalKind::Type {
                        c.exports.push((e.name.name.to_string(), e.kind));
                    }
                    match e.kind {
                        ComponentExternalKind::Func => {
                            let origin = c.funcs.get(e.index as usize).cloned();
                            c.funcs.push(origin.unwrap_or(FuncOrigin::Other));
                            n.funcs += 1;
                        }
                        ComponentExternalKind::Instance => n.instances += 1,
                        ComponentExternalKind::Module => n.core_modules += 1,
                        ComponentExternalKind::Type => n.types += 1,
                        ComponentExternalKind::Component | ComponentExternalKind::Value => {}
                    }
                }
            }
            Payload::ComponentStartSection { start, range } => {
                c.note_use(
                    ComponentExternalKind::Func,
                    start.func_index,
                    "it is the component's start function",
                    range.start,
                );
            }
            Payload::ModuleSection { .. } => n.core_modules += 1,
            Payload::UnknownSection { id, range, .. } => {
                return Err(WeaveError::UnknownSection {
                    id,
                    offset: range.start,
                })
            }
            _ => {}
        }
    }
    c.totals = n;
    Ok((c, bodies))
}

impl Component {
    /// Notes a use of item `index` of `kind` that hands it on: an escape when the item is
    /// an imported instance or a function of one.
    fn note_use(&mut self, kind: ComponentExternalKind, index: u32, how: &'static str, at: usize) {
        let escape = match kind {
            ComponentExternalKind::Instance if self.imported_instances.contains_key(&index) => {
                Some((Some(index), None))
            }
            ComponentExternalKind::Func
                if matches!(
                    self.funcs.get(index as usize),
                    Some(FuncOrigin::Import { .. })
                ) =>
            {
                Some((None, Some(index)))
            }
            _ => None,
        };
        if let Some((instance, func)) = escape {
            self.escapes.push(Escape {
                instance,
                func,
                how,
                offset: at,
            });
        }
    }
}

/// One import of the monitor stub: a monitored function, lowered once or several times
/// with the same options. `module` is the component import's interface, with `+irm.K`
/// appended for the K-th other set of options the function is lowered with.
#[derive(Clone, Debug)]
pub(crate) struct StubImport {
    pub module: String,
    pub field: String,
    pub ty: FuncType,
    /// The lowerings (core function indices) it stands for.
    pub lowerings: Vec<u32>,
}

/// What is monitored and where the monitor goes.
pub(crate) struct Plan {
    pub imports: Vec<StubImport>,
    /// The core memory the monitored lowerings read, and its type.
    pub memory: Option<(u32, MemoryType)>,
    /// The monitor is instantiated right after this top-level item (the last monitored
    /// lowering, as [`Lowering::at`]); `counts` are the index spaces there.
    pub at: (usize, usize),
    pub counts: Counts,
    /// `get-directories`, when the monitor keeps a component's descriptor table: the
    /// copier serves it (`build::copier`).
    pub preopens: Option<Preopens>,
    /// The index spaces at the component's end, and its number of core memories.
    pub totals: Counts,
    pub core_memories: u32,
}

/// `get-directories` as the copier serves it: its stub import, the component function
/// its lowering lowers, and the component's `realloc` that lowering names.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Preopens {
    pub import: usize,
    pub func: u32,
    pub realloc: u32,
}

/// Decides what is monitored (`view` is the program as the component sees it) and
/// refuses what the monitor could not stand between.
pub(crate) fn plan(c: &Component, view: &Program) -> Result<Plan, WeaveError> {
    let event = |module: &str, field: &str| -> Option<EventId> {
        match view.event_for_spelling(module, field) {
            Ok(Some((e, _))) if view.monitors(e) => Some(e),
            _ => None,
        }
    };
    for e in &c.escapes {
        let monitored = match (e.instance, e.func) {
            (Some(i), _) => {
                let name = &c.imported_instances[&i];
                c.imported
                    .iter()
                    .find(|(m, f)| m == name && event(m, f).is_some())
                    .map(|(m, f)| format!("instance `{m}` (its function `{f}` is monitored)"))
            }
            (None, Some(f)) => match &c.funcs[f as usize] {
                FuncOrigin::Import { module, field } if event(module, field).is_some() => {
                    Some(format!("function `{module}.{field}`"))
                }
                _ => None,
            },
            (None, None) => None,
        };
        if let Some(what) = monitored {
            return Err(WeaveError::Component {
                why: format!(
                    "the imported {what} is used at byte {:#x}, where {}; the monitor could \
                     not stand between it and its callers",
                    e.offset, e.how
                ),
            });
        }
    }
    let mut imports: Vec<StubImport> = Vec::new();
    let mut options_of: Vec<Vec<CanonicalOption>> = Vec::new();
    // By stub import: the component import's module (the stub's may carry a suffix).
    let mut origin: Vec<String> = Vec::new();
    let mut memory: Option<(u32, Option<(u32, String)>)> = None;
    let mut last: Option<&Lowering> = None;
    for l in &c.lowerings {
        if event(&l.module, &l.field).is_none() {
            continue;
        }
        let what = || {
            format!(
                "`{}.{}` (lowered at byte {:#x})",
                l.module, l.field, l.offset
            )
        };
        for o in &l.options {
            let unsupported = match o {
                CanonicalOption::Async | CanonicalOption::Callback(_) => Some("async lowering"),
                CanonicalOption::UTF16 | CanonicalOption::CompactUTF16 => {
                    Some("strings not encoded as UTF-8")
                }
                CanonicalOption::Gc | CanonicalOption::CoreType(_) => {
                    Some("the garbage-collected canonical ABI")
                }
                _ => None,
            };
            if let Some(u) = unsupported {
                return Err(WeaveError::Component {
                    why: format!(
                        "monitored import {} uses {u}, which irm does not support",
                        what()
                    ),
                });
            }
            if let CanonicalOption::Memory(mem) = o {
                let origin = c.memories.get(*mem as usize).cloned().flatten();
                match &memory {
                    None => memory = Some((*mem, origin)),
                    Some((m0, o0)) if *m0 == *mem || (origin.is_some() && *o0 == origin) => {}
                    Some(_) => {
                        return Err(WeaveError::Component {
                            why: format!(
                                "monitored import {} reads another memory than the other \
                                 monitored imports; one monitor reads one memory",
                                what()
                            ),
                        })
                    }
                }
            }
        }
        let ty = lowered_type(c, l.core_func)?;
        let same = |i: &usize| imports[*i].field == l.field && origin[*i] == l.module;
        match (0..imports.len()).find(|i| same(i) && options_of[*i] == l.options) {
            Some(i) => imports[i].lowerings.push(l.core_func),
            None => {
                // Lowered again with other options (another `realloc`, say): a stub import
                // of its own, under a spelling of the same interface that names the same
                // event (build metadata, which versions ignore).
                let variants = (0..imports.len()).filter(|i| same(i)).count();
                let module = match variants {
                    0 => l.module.clone(),
                    k => match policy_lang::wit::split_interface(&l.module) {
                        Some((_, Some(v))) if !v.contains('+') => format!("{}+irm.{k}", l.module),
                        _ => {
                            return Err(WeaveError::Component {
                                why: format!(
                                    "monitored import {} is lowered twice with different \
                                     options, and its interface has no version to tell the \
                                     two apart by",
                                    what()
                                ),
                            })
                        }
                    },
                };
                imports.push(StubImport {
                    module,
                    field: l.field.clone(),
                    ty,
                    lowerings: vec![l.core_func],
                });
                options_of.push(l.options.clone());
                origin.push(l.module.clone());
            }
        }
        last = Some(l);
    }
    let memory = memory.map(|(m, _)| (m, c.types.as_ref().memory_at(m)));
    if let Some((m, ty)) = &memory {
        if ty.memory64 {
            return Err(WeaveError::Component {
                why: format!("the monitored imports read 64-bit memory {m}"),
            });
        }
    }
    let preopens = preopens(c, view, &imports, &options_of, &origin)?;
    Ok(Plan {
        imports,
        memory,
        at: last.map_or((0, 0), |l| l.at),
        counts: last.map_or_else(Counts::default, |l| l.counts),
        preopens,
        totals: c.totals,
        core_memories: c.memories.len() as u32,
    })
}

/// The list `get-directories` returns is written into the component's memory through
/// the component's own `realloc`, which runs while the host writes and could rewrite
/// what the monitor then reads; a monitor that keeps the descriptor table therefore has
/// the copier serve the call (`build::copier`). `None` when get-directories is not
/// monitored or the program does not track.
fn preopens(
    c: &Component,
    view: &Program,
    imports: &[StubImport],
    options_of: &[Vec<CanonicalOption>],
    origin: &[String],
) -> Result<Option<Preopens>, WeaveError> {
    use policy_lang::descriptors::Effect;
    if !view.tracks() {
        return Ok(None);
    }
    let served: Vec<usize> = (0..imports.len())
        .filter(|&i| Effect::of_import(&origin[i], &imports[i].field) == Some(Effect::Preopens))
        .collect();
    let i = match served[..] {
        [] => return Ok(None),
        [i] => i,
        _ => {
            return Err(WeaveError::Component {
                why: "`get-directories` is lowered with several sets of options; the monitor \
                      serves it with one"
                    .into(),
            })
        }
    };
    let realloc = options_of[i].iter().find_map(|o| match o {
        CanonicalOption::Realloc(r) => Some(*r),
        _ => None,
    });
    let lowering = c
        .lowerings
        .iter()
        .find(|l| imports[i].lowerings.first() == Some(&l.core_func));
    match (realloc, lowering.and_then(|l| l.func)) {
        (Some(realloc), Some(func)) => Ok(Some(Preopens {
            import: i,
            func,
            realloc,
        })),
        _ => Err(WeaveError::Component {
            why: "`get-directories` is lowered without a `realloc`".into(),
        }),
    }
}

/// The core type of the function `canon lower` defined at `core_func`.
fn lowered_type(c: &Component, core_func: u32) -> Result<FuncType, WeaveError> {
    let id = c.types.as_ref().core_function_at(core_func);
    match &c.types[id].composite_type.inner {
        wasmparser::CompositeInnerType::Func(f) => Ok(f.clone()),
        _ => Err(WeaveError::Internal {
            message: format!("core function {core_func} of the component has no function type"),
        }),
    }
}
