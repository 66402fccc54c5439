//! Host enforcement of a component: the component is not changed; each WASI 0.2 function
//! a policy monitors is defined in the linker by a host function that asks the reference
//! interpreter ([`Monitor`]) before and after calling wasmtime-wasi's own implementation,
//! which it reaches through the [forwarder](super::forward).
//!
//! The monitor sees a call as a core module's monitor would see it lowered (the events
//! of [`policy_lang::wit`]): each WIT parameter flattened by the canonical ABI, strings
//! as strings. What has no meaning outside the guest's memory reads as 0: `retptr`, the
//! `params` pointer of a call with more than 16 flat parameters, and the pointer of a
//! list that is not a string. A handle is known by the host's own number for the
//! resource (its `rep`), which stays the same however the guest passes it on, until the
//! resource is dropped: descriptors and streams are followed by that number. Handles of
//! resources whose host type the monitor does not know (none of wasmtime-wasi's
//! descriptors, streams, sockets, networks, pollables or directory listings) read as -1.
use std::sync::{Arc, Mutex};

use policy_lang::descriptors::{Effect, Opened};
use policy_lang::handles::Place;
use policy_lang::interp::{self, Monitor, Value};
use policy_lang::ir::{EventId, Program};
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};
use wasmtime::component::{Component, Linker, Resource, ResourceAny, ResourceType, Val};
use wasmtime::{Store, StoreContextMut};

use super::forward;
use super::ComponentState;
use crate::host::{conclude, decide_pre, PolicyStop};
use crate::observe::{self, lock};
use crate::RunError;

/// One import the monitor wraps.
struct Wrapped {
    interface: String,
    field: String,
    event: EventId,
    ty: ComponentFunc,
}

/// Defines, in `linker`, a wrapper for every import of `component` that `program`
/// monitors, which calls the function `real` defines (wasmtime-wasi's, or a judge's fake
/// host). The forwarder is instantiated with `real` in `store` here, before the
/// component.
pub(crate) fn wrap_imports(
    linker: &mut Linker<ComponentState>,
    store: &mut Store<ComponentState>,
    component: &Component,
    program: &Program,
    obs: &Arc<Mutex<observe::Observer>>,
    real: &Linker<ComponentState>,
) -> Result<(), RunError> {
    let engine = store.engine().clone();
    let mut imported: Vec<(String, String, Option<ComponentFunc>)> = Vec::new();
    for (name, item) in component.component_type().imports(&engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        for (field, item) in instance.exports(&engine) {
            match item.ty {
                ComponentItem::ComponentFunc(f) => {
                    imported.push((name.to_string(), field.to_string(), Some(f)))
                }
                ComponentItem::Resource(_) => {
                    imported.push((name.to_string(), format!("[resource-drop]{field}"), None))
                }
                _ => {}
            }
        }
    }
    // The component is judged as it sees the policies, as its woven twin would be.
    let view = program
        .restricted_to_imports(imported.iter().map(|(m, f, _)| (m.as_str(), f.as_str())))
        .for_component();
    let mut wrapped = Vec::new();
    for (module, field, ty) in imported {
        let Some(event) = view.event_for_import(&module, &field) else {
            continue;
        };
        if !view.monitors(event) {
            continue;
        }
        let acts_on_it = view.policies.iter().any(|p| p.acts() && p.mentions(event));
        let Some(ty) = ty else {
            // A drop is not a call: wasmtime runs the resource's destructor with no
            // function the linker could wrap. Forgetting the handle is not needed (the
            // host never hands out a number it still uses), but a policy that decides
            // on the drop would silently never see it.
            if acts_on_it {
                return Err(RunError::Link(vec![format!(
                    "{module}.{field}: a policy decides on this resource drop, which host enforcement of a component cannot see; use inline enforcement (the default)"
                )]));
            }
            continue;
        };
        let Some((interface, _)) = policy_lang::wit::split_interface(&module) else {
            continue;
        };
        if !policy_lang::wit::is_catalogue_interface(&module) {
            return Err(RunError::Link(vec![format!(
                "{module}.{field}: host enforcement wraps only the WASI 0.2 functions wasmtime provides"
            )]));
        }
        wrapped.push(Wrapped {
            interface: interface.to_string(),
            field,
            event,
            ty,
        });
    }
    if wrapped.is_empty() {
        return Ok(());
    }

    let forwarder_error =
        |message: String| RunError::Link(vec![format!("  the forwarder: {message}")]);
    let functions: Vec<(String, String)> = wrapped
        .iter()
        .map(|w| (w.interface.clone(), w.field.clone()))
        .collect();
    let wasm = forward::build(&functions).map_err(forwarder_error)?;
    let forwarder =
        Component::new(&engine, &wasm).map_err(|e| forwarder_error(format!("{e:#}")))?;
    let instance = real
        .instantiate(&mut *store, &forwarder)
        .map_err(|e| forwarder_error(format!("{e:#}")))?;

    let program = Arc::new(view);
    let monitor = Arc::new(Mutex::new(Monitor::from_arc(Arc::clone(&program))));
    linker.allow_shadowing(true);
    for (i, w) in wrapped.into_iter().enumerate() {
        let real = instance
            .get_func(&mut *store, forward::export_name(i))
            .ok_or_else(|| forwarder_error(format!("no export for {}", w.field)))?;
        let wrapper = Wrapper {
            event: w.event,
            ty: w.ty,
            real,
            program: Arc::clone(&program),
            monitor: Arc::clone(&monitor),
            obs: Arc::clone(obs),
        };
        let name = format!("{}@{}", w.interface, policy_lang::wit::VERSION);
        linker
            .instance(&name)
            .and_then(|mut inst| {
                inst.func_new(&w.field, move |store, _ty, params, results| {
                    wrapper.call(store, params, results)
                })
            })
            .map_err(|error| RunError::WrapImport {
                import: format!("{name}.{}", w.field),
                error,
            })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// The host function that stands for one import.
struct Wrapper {
    event: EventId,
    ty: ComponentFunc,
    real: wasmtime::component::Func,
    program: Arc<Program>,
    monitor: Arc<Mutex<Monitor>>,
    obs: Arc<Mutex<observe::Observer>>,
}

impl Wrapper {
    fn call(
        &self,
        mut store: StoreContextMut<'_, ComponentState>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let event = self.event;
        let mut params = params.to_vec();
        let mut reps = Vec::with_capacity(params.len());
        for p in &mut params {
            reps.push(match p {
                Val::Resource(r) => {
                    let (rep, again) = rep_of(&mut store, *r)?;
                    *r = again;
                    rep
                }
                _ => None,
            });
        }
        // Handles the guest lent this call, given back once the real function returned.
        let lent = borrows(&params);
        let args = self.args(&params, &reps)?;
        let (step, pre_audits) = decide_pre(&self.monitor, &self.obs, event, &args);
        match step.outcome {
            interp::Outcome::Deny(_) => return Err(wasmtime::Error::new(PolicyStop)),
            interp::Outcome::Suppress(v) => {
                suppressed(&self.ty, v, results)?;
                lock(&self.obs).finish();
                return Ok(());
            }
            interp::Outcome::Proceed => {}
        }
        // A trap here leaves the monitor busy: every later monitored call is denied,
        // as in the woven monitor.
        self.real.call(&mut store, &params, results)?;
        for r in lent {
            r.resource_drop(&mut store)?;
        }
        let mut handed = Vec::new();
        for r in results.iter_mut() {
            take_reps(&mut store, r, &mut handed)?;
        }
        let result = match (&*results, self.ty.results().next()) {
            ([r], Some(t)) if self.program.events[event as usize].results.len() == 1 => {
                let mut flat = Vec::new();
                flatten(&t, r, &mut handed.iter().map(|h| h.1), &mut flat)?;
                flat.first().map(|&(_, bits)| bits as i64)
            }
            _ => None,
        };
        let ok = matches!(results.first(), Some(Val::Result(Ok(_))));
        // The handles of one resource the call handed out, in order (`accept` hands out a
        // socket before its streams).
        let of = |ty: ResourceType| -> Vec<Option<u32>> {
            handed.iter().filter(|h| h.0 == ty).map(|h| h.1).collect()
        };
        let descriptor = ResourceType::host::<wasmtime_wasi::filesystem::Descriptor>();
        let mut numbered = None;
        let mut monitor = lock(&self.monitor);
        let post = match (
            self.program.descriptor_effect(event),
            self.program.stream_grants(event),
        ) {
            (Some(Effect::OpenAt), _) => {
                let fd = of(descriptor).first().copied().flatten().filter(|_| ok);
                numbered = fd;
                let opened = fd.map(|fd| Opened { fd, filetype: 0 });
                monitor.post_opened(event, &args, result, opened)
            }
            (Some(Effect::Preopens), _) => {
                let reps = of(descriptor);
                numbered = reps.first().copied().flatten();
                monitor.post_directories(event, &args, &directories(results.first(), &reps))
            }
            (_, grants) if grants.iter().any(|g| matches!(g.at, Place::Ok(_))) => {
                let (mut inputs, mut outputs) = (
                    of(ResourceType::host::<wasmtime_wasi::p2::DynInputStream>()).into_iter(),
                    of(ResourceType::host::<wasmtime_wasi::p2::DynOutputStream>()).into_iter(),
                );
                let streams: Option<Vec<u32>> = grants
                    .iter()
                    .map(|g| match g.stream {
                        policy_lang::handles::Stream::Input => inputs.next().flatten(),
                        policy_lang::handles::Stream::Output => outputs.next().flatten(),
                    })
                    .collect();
                let streams = streams.filter(|_| ok);
                numbered = streams.as_ref().and_then(|s| s.first().copied());
                monitor.post_streams(event, &args, result, streams.as_deref())
            }
            _ => monitor.post_opened(event, &args, result, None),
        };
        drop(monitor);
        conclude(&self.obs, result, Some(numbered), pre_audits, &post)
    }
}

impl Wrapper {
    /// The call's arguments as the event's parameters: each WIT parameter flattened, or
    /// one string, one integer or one handle's `rep`.
    fn args(&self, params: &[Val], reps: &[Option<u32>]) -> wasmtime::Result<Vec<Value>> {
        let e = &self.program.events[self.event as usize];
        let mut args = Vec::with_capacity(e.params.len());
        let indirect = e.params.first().is_some_and(|p| p.name == "params");
        if !indirect {
            for ((v, rep), (_, ty)) in params.iter().zip(reps).zip(self.ty.params()) {
                match v {
                    Val::String(s) => args.push(Value::Str(Some(s.as_bytes().to_vec()))),
                    Val::List(items) if matches!(&ty, Type::List(l) if l.ty() == Type::U8) => {
                        args.push(Value::Str(Some(bytes(items))))
                    }
                    Val::Resource(_) => args.push(Value::Int(rep.map_or(-1, |r| r as i32 as i64))),
                    v => {
                        let mut flat = Vec::new();
                        flatten(&ty, v, &mut std::iter::empty(), &mut flat)?;
                        args.extend(flat.into_iter().map(|(f, bits)| match f {
                            Flat::I32 => Value::Int(bits as u32 as i32 as i64),
                            Flat::I64 => Value::Int(bits as i64),
                            Flat::F32 => Value::Float(f32::from_bits(bits as u32) as f64),
                            Flat::F64 => Value::Float(f64::from_bits(bits)),
                        }));
                    }
                }
            }
        }
        // `params` and `retptr` point into a memory the host does not see.
        while args.len() < e.params.len() {
            args.push(Value::Int(0));
        }
        if args.len() != e.params.len() {
            return Err(wasmtime::Error::msg(format!(
                "{}.{}: its arguments flatten to {} values, but the event has {} parameters",
                e.module,
                e.field,
                args.len(),
                e.params.len()
            )));
        }
        Ok(args)
    }
}

fn bytes(items: &[Val]) -> Vec<u8> {
    items
        .iter()
        .filter_map(|b| match b {
            Val::U8(b) => Some(*b),
            _ => None,
        })
        .collect()
}

/// Every borrowed handle in `vals`, depth first: a host function must give back what
/// it was lent before it returns.
pub(crate) fn borrows(vals: &[Val]) -> Vec<ResourceAny> {
    fn walk(v: &Val, out: &mut Vec<ResourceAny>) {
        match v {
            Val::Resource(r) if !r.owned() => out.push(*r),
            Val::List(items) | Val::Tuple(items) => items.iter().for_each(|i| walk(i, out)),
            Val::Record(fields) => fields.iter().for_each(|(_, f)| walk(f, out)),
            Val::Variant(_, Some(b))
            | Val::Option(Some(b))
            | Val::Result(Ok(Some(b)) | Err(Some(b))) => walk(b, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    vals.iter().for_each(|v| walk(v, &mut out));
    out
}

/// The host's number for a resource it knows (a descriptor or a stream), and a handle
/// standing for the same resource to pass on (taking the number consumes `r`).
fn rep_of(
    store: &mut StoreContextMut<'_, ComponentState>,
    r: ResourceAny,
) -> wasmtime::Result<(Option<u32>, ResourceAny)> {
    macro_rules! known {
        ($($t:ty),*) => {$(
            if r.ty() == wasmtime::component::ResourceType::host::<$t>() {
                let res: Resource<$t> = r.try_into_resource(&mut *store)?;
                let rep = res.rep();
                return Ok((Some(rep), res.try_into_resource_any(&mut *store)?));
            }
        )*};
    }
    known!(
        wasmtime_wasi::filesystem::Descriptor,
        wasmtime_wasi::p2::DynInputStream,
        wasmtime_wasi::p2::DynOutputStream,
        wasmtime_wasi::p2::TcpSocket,
        wasmtime_wasi::p2::UdpSocket,
        wasmtime_wasi::p2::Network,
        wasmtime_wasi::p2::DynPollable,
        wasmtime_wasi::p2::ReaddirIterator
    );
    // A host-defined resource of a dynamic type (an embedder's own host, or a judge's).
    if let Ok(res) = r.try_into_resource_dynamic(&mut *store) {
        let rep = res.rep();
        return Ok((Some(rep), res.try_into_resource_any(&mut *store)?));
    }
    Ok((None, r))
}

/// Replaces every handle in `v` (depth first) by one for the same resource, appending
/// each one's resource type and `rep` to `out`.
fn take_reps(
    store: &mut StoreContextMut<'_, ComponentState>,
    v: &mut Val,
    out: &mut Vec<(ResourceType, Option<u32>)>,
) -> wasmtime::Result<()> {
    match v {
        Val::Resource(r) => {
            let ty = r.ty();
            let (rep, again) = rep_of(store, *r)?;
            *r = again;
            out.push((ty, rep));
        }
        Val::List(items) | Val::Tuple(items) => {
            for i in items {
                take_reps(store, i, out)?;
            }
        }
        Val::Record(fields) => {
            for (_, f) in fields {
                take_reps(store, f, out)?;
            }
        }
        Val::Variant(_, Some(b))
        | Val::Option(Some(b))
        | Val::Result(Ok(Some(b)) | Err(Some(b))) => take_reps(store, b, out)?,
        _ => {}
    }
    Ok(())
}

/// `get-directories`' list: each preopen's `rep` and name.
fn directories(list: Option<&Val>, reps: &[Option<u32>]) -> Vec<(u32, Vec<u8>)> {
    let Some(Val::List(items)) = list else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (item, rep) in items.iter().zip(reps) {
        if let (Val::Tuple(pair), Some(rep)) = (item, rep) {
            if let Some(Val::String(name)) = pair.get(1) {
                out.push((*rep, name.as_bytes().to_vec()));
            }
        }
    }
    out
}

/// The results of a suppressed call: the policy's value as the one integer result, none
/// for a function without results; any other result cannot be made up.
fn suppressed(ty: &ComponentFunc, v: Option<i64>, results: &mut [Val]) -> wasmtime::Result<()> {
    let Some(t) = ty.results().next() else {
        return Ok(());
    };
    let val = integer(&t, v.unwrap_or(0)).ok_or_else(|| {
        wasmtime::Error::msg(format!(
            "a policy suppressed a call returning {t:?}, which host enforcement cannot make up"
        ))
    })?;
    if let Some(r) = results.first_mut() {
        *r = val;
    }
    Ok(())
}

/// `v` as a value of integer-like type `ty` (`bool`, the integers), if it is one.
pub(crate) fn integer(ty: &Type, v: i64) -> Option<Val> {
    Some(match ty {
        Type::Bool => Val::Bool(v != 0),
        Type::S8 => Val::S8(v as i8),
        Type::U8 => Val::U8(v as u8),
        Type::S16 => Val::S16(v as i16),
        Type::U16 => Val::U16(v as u16),
        Type::S32 => Val::S32(v as i32),
        Type::U32 => Val::U32(v as u32),
        Type::S64 => Val::S64(v),
        Type::U64 => Val::U64(v as u64),
        _ => return None,
    })
}

/// A core value type of the canonical ABI's flattening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flat {
    I32,
    I64,
    F32,
    F64,
}

/// The core types `ty` flattens to.
fn flat_types(ty: &Type, out: &mut Vec<Flat>) {
    match ty {
        Type::S64 | Type::U64 => out.push(Flat::I64),
        Type::Float32 => out.push(Flat::F32),
        Type::Float64 => out.push(Flat::F64),
        Type::String | Type::List(_) => out.extend([Flat::I32, Flat::I32]),
        Type::Record(r) => r.fields().for_each(|f| flat_types(&f.ty, out)),
        Type::Tuple(t) => t.types().for_each(|t| flat_types(&t, out)),
        Type::Flags(f) => out.extend(std::iter::repeat_n(
            Flat::I32,
            f.names().len().div_ceil(32).max(1),
        )),
        Type::Variant(v) => variant_types(v.cases().map(|c| c.ty), out),
        Type::Option(o) => variant_types([None, Some(o.ty())].into_iter(), out),
        Type::Result(r) => variant_types([r.ok(), r.err()].into_iter(), out),
        _ => out.push(Flat::I32),
    }
}

fn variant_types(cases: impl Iterator<Item = Option<Type>>, out: &mut Vec<Flat>) {
    out.push(Flat::I32);
    let mut joined: Vec<Flat> = Vec::new();
    for case in cases.flatten() {
        let mut flat = Vec::new();
        flat_types(&case, &mut flat);
        for (i, f) in flat.into_iter().enumerate() {
            match joined.get_mut(i) {
                Some(j) => *j = join(*j, f),
                None => joined.push(f),
            }
        }
    }
    out.extend(joined);
}

fn join(a: Flat, b: Flat) -> Flat {
    match (a, b) {
        _ if a == b => a,
        (Flat::I32, Flat::F32) | (Flat::F32, Flat::I32) => Flat::I32,
        _ => Flat::I64,
    }
}

/// `v` of type `ty` flattened as the canonical ABI lowers it: each value's type and bits.
/// Handles take their number from `reps`; lists and strings have pointer 0.
fn flatten(
    ty: &Type,
    v: &Val,
    reps: &mut dyn Iterator<Item = Option<u32>>,
    out: &mut Vec<(Flat, u64)>,
) -> wasmtime::Result<()> {
    let int = |x: i64| (Flat::I32, x as u32 as u64);
    match (ty, v) {
        (_, Val::Bool(b)) => out.push(int(*b as i64)),
        (_, Val::S8(x)) => out.push(int(*x as i64)),
        (_, Val::U8(x)) => out.push(int(*x as i64)),
        (_, Val::S16(x)) => out.push(int(*x as i64)),
        (_, Val::U16(x)) => out.push(int(*x as i64)),
        (_, Val::S32(x)) => out.push(int(*x as i64)),
        (_, Val::U32(x)) => out.push(int(*x as i64)),
        (_, Val::S64(x)) => out.push((Flat::I64, *x as u64)),
        (_, Val::U64(x)) => out.push((Flat::I64, *x)),
        (_, Val::Float32(x)) => out.push((Flat::F32, x.to_bits() as u64)),
        (_, Val::Float64(x)) => out.push((Flat::F64, x.to_bits())),
        (_, Val::Char(c)) => out.push(int(*c as i64)),
        (_, Val::String(s)) => out.extend([int(0), int(s.len() as i64)]),
        (_, Val::List(items)) => out.extend([int(0), int(items.len() as i64)]),
        (_, Val::Resource(_)) => {
            let rep = reps.next().flatten();
            out.push(int(rep.map_or(-1, |r| r as i64)));
        }
        (Type::Record(r), Val::Record(fields)) => {
            for (f, (_, v)) in r.fields().zip(fields) {
                flatten(&f.ty, v, reps, out)?;
            }
        }
        (Type::Tuple(t), Val::Tuple(items)) => {
            for (t, v) in t.types().zip(items) {
                flatten(&t, v, reps, out)?;
            }
        }
        (Type::Enum(e), Val::Enum(name)) => {
            out.push(int(e.names().position(|n| n == name).unwrap_or(0) as i64))
        }
        (Type::Flags(f), Val::Flags(set)) => {
            let words = f.names().len().div_ceil(32).max(1);
            let mut bits = vec![0u32; words];
            for (i, n) in f.names().enumerate() {
                if set.iter().any(|s| s == n) {
                    bits[i / 32] |= 1 << (i % 32);
                }
            }
            out.extend(bits.into_iter().map(|b| int(b as i64)));
        }
        (Type::Variant(t), Val::Variant(name, payload)) => {
            let cases: Vec<_> = t.cases().collect();
            let index = cases.iter().position(|c| c.name == name).unwrap_or(0);
            let case_ty = cases.get(index).and_then(|c| c.ty.clone());
            variant(
                ty,
                index,
                case_ty.as_ref().zip(payload.as_deref()),
                reps,
                out,
            )?;
        }
        (Type::Option(o), Val::Option(payload)) => {
            let t = o.ty();
            let index = payload.is_some() as usize;
            variant(ty, index, payload.as_deref().map(|p| (&t, p)), reps, out)?;
        }
        (Type::Result(r), Val::Result(res)) => {
            let (index, t, p) = match res {
                Ok(p) => (0, r.ok(), p.as_deref()),
                Err(p) => (1, r.err(), p.as_deref()),
            };
            variant(ty, index, t.as_ref().zip(p), reps, out)?;
        }
        (ty, v) => {
            return Err(wasmtime::Error::msg(format!(
                "cannot flatten {v:?} as {ty:?} for the monitor"
            )))
        }
    }
    Ok(())
}

/// A variant's flattening: the case index, then the payload widened to the joined types
/// of every case, padded with zeros.
fn variant(
    ty: &Type,
    index: usize,
    payload: Option<(&Type, &Val)>,
    reps: &mut dyn Iterator<Item = Option<u32>>,
    out: &mut Vec<(Flat, u64)>,
) -> wasmtime::Result<()> {
    let mut joined = Vec::new();
    flat_types(ty, &mut joined);
    out.push((Flat::I32, index as u64));
    let mut flat = Vec::new();
    if let Some((t, v)) = payload {
        flatten(t, v, reps, &mut flat)?;
    }
    for (i, want) in joined.into_iter().skip(1).enumerate() {
        // A narrower value in a wider slot keeps its bits, zero-extended.
        out.push((want, flat.get(i).map_or(0, |&(_, bits)| bits)));
    }
    Ok(())
}
