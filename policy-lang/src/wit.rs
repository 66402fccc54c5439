//! The built-in WASI 0.2 catalogue: the component-model functions the wasmtime CLI
//! provides, read from their WIT (`policy-lang/wit/wasi-0.2/`, the files wasmtime-wasi 48
//! implements: WASI 0.2.12) with `wit-parser`, never typed in by hand.
//!
//! # Names
//! A component imports an interface function by its WIT name: the import module is the
//! interface, `ns:pkg/iface@version` (`wasi:filesystem/types@0.2.3`), the field the
//! function, `[method]descriptor.open-at` for a resource method, `[static]...` and
//! `[constructor]...` likewise. A policy names it the same way:
//!
//! ```text
//! event open_at = "wasi:filesystem/types@0.2.x"."[method]descriptor.open-at";
//! ```
//!
//! # Versions
//! wasmtime links an import to any definition of a semver-compatible version, so a
//! policy that named one patch release could be escaped by importing another. A policy's
//! version therefore means its compatibility class, as wasmtime's linker reads it: the
//! same major version from 1.0 on, the same `0.minor` before it (the same `0.0.patch`
//! below 0.1). `@0.2.x` and `@0.2.0` both name every `0.2.*` import; they are one event.
//! A pre-release (`0.3.0-rc-2025-09-16`) names only itself. An interface written
//! without a version names only unversioned imports (custom interfaces).
//!
//! # Parameters
//! Each WIT parameter becomes one policy parameter of the same name, kebab-case turned
//! into snake case (`path-flags` is `path_flags`), with the core Wasm type the canonical
//! ABI lowers it to: integers, `bool`, `char`, enums, flags and resource handles (`own`,
//! `borrow`) are `i32` (or `i64` for 64-bit integers, `f32`/`f64` for floats); `string`
//! and `list<u8>` are strings (pointer and length in the caller's memory). A parameter of
//! any other type (records, tuples, variants, options, results, other lists) lowers to
//! several core values, named `<param>_0`, `<param>_1`, ... in order, each typed as the
//! canonical ABI flattens it. A function whose results do not fit one core value gets
//! a last parameter `retptr`: where the host writes them. A function with more than 16
//! flattened parameters takes one pointer, `params`, instead.
//!
//! A resource's drop (`canon resource.drop`, which a core module imports as
//! `[resource-drop]descriptor`) is a catalogue function too: `[resource-drop]R` of the
//! interface that defines `R`, with one parameter `self`, the handle.
//!
//! # Constants
//! Every enum case and flag of a catalogue type is a constant named
//! `<PACKAGE>_<TYPE>_<CASE>` in upper snake case: `FILESYSTEM_OPEN_FLAGS_CREATE` (flags
//! are bit masks, `1 << i`), `FILESYSTEM_ERROR_CODE_ACCESS`, `SOCKETS_ERROR_CODE_ACCESS_DENIED`
//! (enum cases are their index).
use std::collections::BTreeMap;
use std::sync::OnceLock;

use wit_parser::abi::WasmType;
use wit_parser::{Resolve, Type, TypeDefKind, TypeId};

use crate::ir::{Event, Param, ParamType, ValType};

/// The WIT files (name, text), in dependency order: what a tool that builds components
/// against the catalogue (`monitor-rt`'s forwarder) parses.
pub const FILES: &[(&str, &str)] = &[
    ("io.wit", include_str!("../wit/wasi-0.2/io.wit")),
    ("clocks.wit", include_str!("../wit/wasi-0.2/clocks.wit")),
    ("random.wit", include_str!("../wit/wasi-0.2/random.wit")),
    (
        "filesystem.wit",
        include_str!("../wit/wasi-0.2/filesystem.wit"),
    ),
    ("sockets.wit", include_str!("../wit/wasi-0.2/sockets.wit")),
    ("cli.wit", include_str!("../wit/wasi-0.2/cli.wit")),
];

/// The catalogue's version: what `0.2` in a policy is checked against.
pub const VERSION: &str = "0.2.12";

/// The most flattened parameters the canonical ABI passes directly.
const MAX_FLAT_PARAMS: usize = 16;

/// One function of the catalogue.
#[derive(Clone, Debug)]
pub struct Function {
    /// The interface without its version, e.g. `wasi:filesystem/types`.
    pub interface: String,
    /// The function's WIT name, e.g. `[method]descriptor.open-at`.
    pub name: String,
    /// The event a policy gets for it (its module is the interface at `@0.2.x`).
    pub event: Event,
    /// Its parameters that are resource handles (`own` or `borrow`), by policy parameter
    /// name, with their resource (`wasi:io/streams.output-stream`).
    pub handle_params: Vec<(String, String)>,
    /// The resources of the `own` handles its result can hold, in the order they appear.
    pub hands_out: Vec<String>,
    /// For a result `result<own<R>, E>` or `result<tuple<own<R>, ...>, E>` returned
    /// behind `retptr`: each handle's resource and its offset there (the canonical ABI's
    /// layout, when the discriminant at offset 0 is `ok`).
    pub ok_handles: Vec<(String, u32)>,
}

struct Catalogue {
    interfaces: std::collections::BTreeSet<String>,
    functions: Vec<Function>,
    constants: BTreeMap<String, i64>,
}

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| build().expect("the vendored WASI 0.2 WIT files parse"))
}

fn build() -> Result<Catalogue, String> {
    let mut resolve = Resolve::default();
    for (name, text) in FILES {
        resolve
            .push_str(name, text)
            .map_err(|e| format!("{name}: {e:#}"))?;
    }
    let mut sizes = wit_parser::SizeAlign::default();
    sizes.fill(&resolve);
    let mut functions = Vec::new();
    let mut constants = BTreeMap::new();
    let mut interfaces = std::collections::BTreeSet::new();
    for (_, iface) in resolve.interfaces.iter() {
        let (Some(iname), Some(pkg)) = (&iface.name, iface.package) else {
            continue;
        };
        let pkg = &resolve.packages[pkg].name;
        let interface = format!("{}:{}/{iname}", pkg.namespace, pkg.name);
        interfaces.insert(interface.clone());
        let module = format!(
            "{interface}@{}",
            canonical_version(VERSION).unwrap_or_default()
        );
        for f in iface.functions.values() {
            let (params, results) = flatten(&resolve, f);
            let handle_params = f
                .params
                .iter()
                .filter_map(|p| Some((snake(&p.name), handle_resource(&resolve, &p.ty)?)))
                .collect();
            let mut hands_out = Vec::new();
            if let Some(r) = &f.result {
                owned_resources(&resolve, r, &mut hands_out);
            }
            let ok_handles = match &f.result {
                Some(r) if results.is_empty() => ok_handles(&resolve, &sizes, r),
                _ => Vec::new(),
            };
            functions.push(Function {
                interface: interface.clone(),
                name: f.name.clone(),
                handle_params,
                hands_out,
                ok_handles,
                event: Event {
                    name: f.name.clone(),
                    module: module.clone(),
                    field: f.name.clone(),
                    params,
                    results,
                },
            });
        }
        // Each resource an interface defines can be dropped: `canon resource.drop` is a
        // call into the host too, `[resource-drop]R(self)`.
        for (tname, &id) in &iface.types {
            if !matches!(resolve.types[id].kind, TypeDefKind::Resource) {
                continue;
            }
            let name = format!("[resource-drop]{tname}");
            functions.push(Function {
                interface: interface.clone(),
                name: name.clone(),
                handle_params: vec![("self".into(), format!("{interface}.{tname}"))],
                hands_out: Vec::new(),
                ok_handles: Vec::new(),
                event: Event {
                    name: name.clone(),
                    module: module.clone(),
                    field: name,
                    params: vec![Param {
                        name: "self".into(),
                        ty: ParamType::I32,
                    }],
                    results: Vec::new(),
                },
            });
        }
        for (tname, &id) in &iface.types {
            let prefix = format!("{}_{}", upper_snake(&pkg.name), upper_snake(tname));
            let (cases, flags): (Vec<&str>, bool) = match &resolve.types[id].kind {
                TypeDefKind::Enum(e) => (e.cases.iter().map(|c| c.name.as_str()).collect(), false),
                TypeDefKind::Flags(f) => (f.flags.iter().map(|c| c.name.as_str()).collect(), true),
                _ => continue,
            };
            for (i, case) in cases.iter().enumerate() {
                let value = if flags { 1i64 << i } else { i as i64 };
                let name = format!("{prefix}_{}", upper_snake(case));
                if constants
                    .insert(name.clone(), value)
                    .is_some_and(|v| v != value)
                {
                    return Err(format!("two catalogue constants are named {name}"));
                }
            }
        }
    }
    Ok(Catalogue {
        interfaces,
        functions,
        constants,
    })
}

/// The policy parameters and core results of `f` imported into a component.
fn flatten(resolve: &Resolve, f: &wit_parser::Function) -> (Vec<Param>, Vec<ValType>) {
    let sig = resolve.wasm_signature(wit_parser::abi::AbiVariant::GuestImport, f);
    let mut params = Vec::new();
    if sig.indirect_params {
        params.push(Param {
            name: "params".into(),
            ty: ParamType::I32,
        });
    } else {
        for p in &f.params {
            let name = snake(&p.name);
            let name = if name == "result" || name == "retptr" {
                format!("{name}_")
            } else {
                name
            };
            if let Some(ty) = scalar(resolve, &p.ty) {
                params.push(Param { name, ty });
                continue;
            }
            let mut storage = [WasmType::I32; MAX_FLAT_PARAMS + 1];
            let mut flat = wit_parser::abi::FlatTypes::new(&mut storage);
            resolve.push_flat(&p.ty, &mut flat);
            for (i, t) in flat.to_vec().into_iter().enumerate() {
                params.push(Param {
                    name: format!("{name}_{i}"),
                    ty: core(t).into(),
                });
            }
        }
    }
    if sig.retptr {
        params.push(Param {
            name: "retptr".into(),
            ty: ParamType::I32,
        });
    }
    (params, sig.results.into_iter().map(core).collect())
}

/// The one policy parameter type of a WIT type that lowers to one value or a string.
fn scalar(resolve: &Resolve, ty: &Type) -> Option<ParamType> {
    Some(match ty {
        Type::Bool
        | Type::U8
        | Type::U16
        | Type::U32
        | Type::S8
        | Type::S16
        | Type::S32
        | Type::Char
        | Type::ErrorContext => ParamType::I32,
        Type::U64 | Type::S64 => ParamType::I64,
        Type::F32 => ParamType::F32,
        Type::F64 => ParamType::F64,
        Type::String => ParamType::Str,
        Type::Id(id) => return scalar_def(resolve, *id),
    })
}

fn scalar_def(resolve: &Resolve, id: TypeId) -> Option<ParamType> {
    match &resolve.types[id].kind {
        TypeDefKind::Type(t) => scalar(resolve, t),
        TypeDefKind::Handle(_) | TypeDefKind::Enum(_) => Some(ParamType::I32),
        TypeDefKind::Flags(f) if f.flags.len() <= 32 => Some(ParamType::I32),
        TypeDefKind::List(Type::U8) => Some(ParamType::Str),
        _ => None,
    }
}

/// `interface.resource` of a resource type, following `use` aliases to its definition.
fn resource_name(resolve: &Resolve, mut id: TypeId) -> Option<String> {
    loop {
        let def = &resolve.types[id];
        match &def.kind {
            TypeDefKind::Type(Type::Id(next)) => id = *next,
            TypeDefKind::Resource => {
                let wit_parser::TypeOwner::Interface(i) = def.owner else {
                    return None;
                };
                let iface = &resolve.interfaces[i];
                let pkg = &resolve.packages[iface.package?].name;
                return Some(format!(
                    "{}:{}/{}.{}",
                    pkg.namespace,
                    pkg.name,
                    iface.name.as_deref()?,
                    def.name.as_deref()?
                ));
            }
            _ => return None,
        }
    }
}

/// The resource of a parameter that is a handle (`own` or `borrow`), if it is one.
fn handle_resource(resolve: &Resolve, ty: &Type) -> Option<String> {
    let Type::Id(id) = ty else { return None };
    match &resolve.types[*id].kind {
        TypeDefKind::Type(t) => handle_resource(resolve, t),
        TypeDefKind::Handle(wit_parser::Handle::Own(r) | wit_parser::Handle::Borrow(r)) => {
            resource_name(resolve, *r)
        }
        _ => None,
    }
}

/// The handles of a `result` whose `ok` is an `own` handle or a tuple of them, with their
/// offsets in the result's memory layout.
fn ok_handles(resolve: &Resolve, sizes: &wit_parser::SizeAlign, ty: &Type) -> Vec<(String, u32)> {
    let Type::Id(id) = ty else { return Vec::new() };
    let TypeDefKind::Result(r) = &resolve.types[*id].kind else {
        return Vec::new();
    };
    let Some(ok) = &r.ok else { return Vec::new() };
    let base = sizes
        .payload_offset(wit_parser::Int::U8, [r.ok.as_ref(), r.err.as_ref()])
        .size_wasm32() as u32;
    let owned = |t: &Type| match t {
        Type::Id(id) => match &resolve.types[*id].kind {
            TypeDefKind::Handle(wit_parser::Handle::Own(res)) => resource_name(resolve, *res),
            _ => None,
        },
        _ => None,
    };
    if let Some(name) = owned(ok) {
        return vec![(name, base)];
    }
    let Type::Id(tid) = ok else { return Vec::new() };
    let TypeDefKind::Tuple(t) = &resolve.types[*tid].kind else {
        return Vec::new();
    };
    sizes
        .field_offsets(&t.types)
        .into_iter()
        .filter_map(|(off, t)| Some((owned(t)?, base + off.size_wasm32() as u32)))
        .collect()
}

/// Appends the resource of every `own` handle `ty` can hold, depth first.
fn owned_resources(resolve: &Resolve, ty: &Type, out: &mut Vec<String>) {
    let Type::Id(id) = ty else { return };
    let mut each = |t: &Type| owned_resources(resolve, t, out);
    match &resolve.types[*id].kind {
        TypeDefKind::Type(t) | TypeDefKind::List(t) | TypeDefKind::Option(t) => each(t),
        TypeDefKind::Handle(wit_parser::Handle::Own(r)) => {
            if let Some(name) = resource_name(resolve, *r) {
                out.push(name);
            }
        }
        TypeDefKind::Tuple(t) => t.types.iter().for_each(each),
        TypeDefKind::Record(r) => r.fields.iter().for_each(|f| each(&f.ty)),
        TypeDefKind::Result(r) => {
            r.ok.iter().for_each(&mut each);
            r.err.iter().for_each(each);
        }
        TypeDefKind::Variant(v) => v.cases.iter().filter_map(|c| c.ty.as_ref()).for_each(each),
        _ => {}
    }
}

fn core(t: WasmType) -> ValType {
    match t {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => ValType::I32,
        WasmType::I64 | WasmType::PointerOrI64 => ValType::I64,
        WasmType::F32 => ValType::F32,
        WasmType::F64 => ValType::F64,
    }
}

impl From<ValType> for ParamType {
    fn from(t: ValType) -> ParamType {
        match t {
            ValType::I32 => ParamType::I32,
            ValType::I64 => ParamType::I64,
            ValType::F32 => ParamType::F32,
            ValType::F64 => ParamType::F64,
        }
    }
}

fn snake(kebab: &str) -> String {
    kebab.replace('-', "_")
}

fn upper_snake(kebab: &str) -> String {
    kebab.replace('-', "_").to_ascii_uppercase()
}

/// `ns:pkg/iface@version` split into the interface and its version, when `module` is
/// a WIT interface name at all (a namespace, a package and an interface).
pub fn split_interface(module: &str) -> Option<(&str, Option<&str>)> {
    let (name, version) = match module.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (module, None),
    };
    let (ns_pkg, iface) = name.split_once('/')?;
    let (ns, pkg) = ns_pkg.split_once(':')?;
    let word = |s: &str| {
        !s.is_empty()
            && s.split('-')
                .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric()))
    };
    (word(ns) && word(pkg) && word(iface)).then_some((name, version))
}

/// The compatibility class of `version`, as a version pattern: `0.2.x` for `0.2.3` or
/// `0.2.x`, `1.x.x` for `1.4.0`, `0.0.3` for itself; a pre-release is its own class, and
/// build metadata (`+...`) is ignored, as semantic versioning says.
/// `None` when `version` is neither a version nor such a pattern.
pub fn canonical_version(version: &str) -> Option<String> {
    // Build metadata (`+...`) never distinguishes versions.
    let version = version.split_once('+').map_or(version, |(v, _)| v);
    if version.contains('-') {
        let core = version.split('-').next()?;
        parts(core, false)?;
        return Some(version.to_string());
    }
    let [major, minor, patch] = parts(version, true)?;
    Some(match (major, minor, patch) {
        (Some(0), Some(0), Some(p)) => format!("0.0.{p}"),
        (Some(0), Some(0), None) => return None,
        (Some(0), Some(m), _) => format!("0.{m}.x"),
        (Some(0), None, _) => return None,
        (Some(major), _, _) => format!("{major}.x.x"),
        (None, _, _) => return None,
    })
}

/// `MAJOR.MINOR.PATCH`, each a number or (with `wildcards`, from the first on) `x`.
fn parts(version: &str, wildcards: bool) -> Option<[Option<u64>; 3]> {
    let mut out = [None; 3];
    let mut it = version.split('.');
    let mut wild = false;
    for slot in &mut out {
        let p = it.next()?;
        if p == "x" && wildcards {
            wild = true;
        } else if wild || p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return None;
        } else {
            *slot = Some(p.parse().ok()?);
        }
    }
    it.next().is_none().then_some(out)
}

/// The canonical spelling of import module `module`: a versioned WIT interface name
/// with its version replaced by its compatibility class ([`canonical_version`]), any
/// other name as it is. Two modules wasmtime would link to the same definition have the
/// same canonical spelling, so events are keyed by it.
pub fn canonical_module(module: &str) -> String {
    match split_interface(module) {
        Some((name, Some(v))) => match canonical_version(v) {
            Some(c) => format!("{name}@{c}"),
            None => module.to_string(),
        },
        _ => module.to_string(),
    }
}

/// The catalogue function `module.field`, `module` in any version of WASI 0.2 (or
/// unversioned): the event a policy gets for it, its module in canonical spelling.
pub fn function(module: &str, field: &str) -> Option<Function> {
    find(module, field).cloned()
}

/// [`function`] without the copy, for lookups made on every monitored call.
pub fn find(module: &str, field: &str) -> Option<&'static Function> {
    let (name, version) = split_interface(module)?;
    if let Some(v) = version {
        if canonical_version(v)? != canonical_version(VERSION)? {
            return None;
        }
    }
    catalogue()
        .functions
        .iter()
        .find(|f| f.interface == name && f.name == field)
}

/// Whether import name `module` is a catalogue interface at a WASI 0.2 version.
pub fn is_catalogue_interface(module: &str) -> bool {
    match split_interface(module) {
        Some((name, Some(v))) => {
            canonical_version(v).is_some_and(|c| Some(c) == canonical_version(VERSION))
                && catalogue().interfaces.contains(name)
        }
        _ => false,
    }
}

/// Every catalogue function.
pub fn functions() -> impl Iterator<Item = &'static Function> {
    catalogue().functions.iter()
}

/// The functions of interface `name` (without version), for suggestions.
pub fn functions_of(name: &str) -> impl Iterator<Item = &'static Function> + '_ {
    catalogue()
        .functions
        .iter()
        .filter(move |f| f.interface == name)
}

/// The value of catalogue constant `name`.
pub fn constant(name: &str) -> Option<i64> {
    catalogue().constants.get(name).copied()
}

/// Every catalogue constant, by name.
pub fn constants() -> impl Iterator<Item = (&'static str, i64)> {
    catalogue().constants.iter().map(|(n, v)| (n.as_str(), *v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(module: &str, field: &str) -> Vec<(String, ParamType)> {
        function(module, field)
            .unwrap_or_else(|| panic!("{module}.{field} is in the catalogue"))
            .event
            .params
            .into_iter()
            .map(|p| (p.name, p.ty))
            .collect()
    }

    #[test]
    fn the_catalogue_has_every_wasi_0_2_interface_the_cli_provides() {
        let interfaces: std::collections::BTreeSet<&str> =
            functions().map(|f| f.interface.as_str()).collect();
        for i in [
            "wasi:filesystem/types",
            "wasi:filesystem/preopens",
            "wasi:sockets/tcp",
            "wasi:sockets/udp",
            "wasi:sockets/tcp-create-socket",
            "wasi:sockets/ip-name-lookup",
            "wasi:io/streams",
            "wasi:io/poll",
            "wasi:cli/stdout",
            "wasi:cli/environment",
            "wasi:clocks/wall-clock",
            "wasi:random/random",
        ] {
            assert!(interfaces.contains(i), "{i} missing from {interfaces:?}");
        }
    }

    #[test]
    fn open_at_has_its_wit_parameters_lowered_and_a_return_pointer() {
        assert_eq!(
            params("wasi:filesystem/types@0.2.0", "[method]descriptor.open-at"),
            vec![
                ("self".into(), ParamType::I32),
                ("path_flags".into(), ParamType::I32),
                ("path".into(), ParamType::Str),
                ("open_flags".into(), ParamType::I32),
                ("flags".into(), ParamType::I32),
                ("retptr".into(), ParamType::I32),
            ]
        );
    }

    #[test]
    fn a_byte_list_is_a_string_and_a_single_result_is_the_core_result() {
        let f = function("wasi:io/streams@0.2.6", "[method]output-stream.write").unwrap();
        assert_eq!(f.event.params[1].name, "contents");
        assert_eq!(f.event.params[1].ty, ParamType::Str);
        let get = function("wasi:cli/stdout@0.2.0", "get-stdout").unwrap();
        assert!(get.event.params.is_empty());
        assert_eq!(get.event.results, vec![ValType::I32]);
    }

    #[test]
    fn a_compound_parameter_is_named_by_its_flattened_positions() {
        // connect(self, network, remote-address: ip-socket-address) -> result<..>
        let p = params("wasi:sockets/tcp@0.2.0", "[method]tcp-socket.start-connect");
        assert_eq!(p[0].0, "self");
        assert_eq!(p[1].0, "network");
        assert_eq!(p[2].0, "remote_address_0");
        assert!(p.iter().any(|(n, _)| n == "remote_address_11"), "{p:?}");
    }

    #[test]
    fn catalogue_events_are_keyed_by_their_compatibility_class() {
        let f = function("wasi:io/streams@0.2.0", "[method]output-stream.write").unwrap();
        assert_eq!(f.event.module, "wasi:io/streams@0.2.x");
        assert!(function("wasi:io/streams@0.3.0", "[method]output-stream.write").is_none());
        assert!(function("wasi:io/streams", "[method]output-stream.write").is_some());
    }

    #[test]
    fn versions_canonicalise_to_what_wasmtime_links_together() {
        assert_eq!(canonical_version("0.2.3").as_deref(), Some("0.2.x"));
        assert_eq!(canonical_version("0.2.x").as_deref(), Some("0.2.x"));
        assert_eq!(canonical_version("1.4.0").as_deref(), Some("1.x.x"));
        assert_eq!(canonical_version("1.x.x").as_deref(), Some("1.x.x"));
        assert_eq!(canonical_version("0.0.3").as_deref(), Some("0.0.3"));
        assert_eq!(canonical_version("0.2.3+build.7").as_deref(), Some("0.2.x"));
        assert_eq!(
            canonical_version("0.3.0-rc-2025-09-16").as_deref(),
            Some("0.3.0-rc-2025-09-16")
        );
        for bad in ["0.2", "x.2.3", "0.x.1", "0.2.3.4", "", "0.2.y"] {
            assert_eq!(canonical_version(bad), None, "{bad}");
        }
        assert_eq!(
            canonical_module("wasi:io/streams@0.2.6"),
            "wasi:io/streams@0.2.x"
        );
        assert_eq!(canonical_module("example:app/net"), "example:app/net");
        assert_eq!(
            canonical_module("wasi_snapshot_preview1"),
            "wasi_snapshot_preview1"
        );
    }

    #[test]
    fn enum_and_flag_constants_are_prefixed_by_package_and_type() {
        assert_eq!(constant("FILESYSTEM_OPEN_FLAGS_CREATE"), Some(1));
        assert_eq!(constant("FILESYSTEM_DESCRIPTOR_FLAGS_WRITE"), Some(2));
        assert_eq!(constant("FILESYSTEM_ERROR_CODE_ACCESS"), Some(0));
        assert_eq!(constant("SOCKETS_ERROR_CODE_ACCESS_DENIED"), Some(1));
        assert_eq!(constant("SOCKETS_IP_ADDRESS_FAMILY_IPV6"), Some(1));
    }
}
