//! Weaving a WebAssembly component (WASI 0.2): one monitor core instance between every
//! lowered import a policy names and every core instance that receives it.
//!
//! In a component, core code reaches a host function only through a core function made by
//! `canon lower` from a component import, handed to core instances as an instantiation
//! argument. The weaver therefore never edits the component's core modules (they keep
//! their bytes); it adds a *monitor* core module, built by weaving a stub with the ordinary
//! core weaver ([`crate::weave`]): the stub imports every monitored lowering (module = the
//! component import's interface name, field = the function, so events match as on a core
//! module) and the memory those lowerings read, and exports each import again; weaving
//! redirects those exports to the wrappers. All policies share the monitor's state, so
//! "no send after a read" holds across every core instance of the component.
//!
//! # Interposition (the invariant)
//! After weaving, no core instance, nested component or export of the component can name
//! a monitored lowering: every reference to it names the monitor's wrapper instead.
//! * References after the monitor is instantiated (the point *P*, just after the last
//!   monitored lowering is defined) name the wrapper, aliased from the monitor instance.
//! * References before *P* (a lowering without memory options is often defined, and
//!   passed to the main module, before the lowerings that need that module's memory)
//!   name a trampoline: a function of a small core module instantiated first, which calls
//!   through its own table; a fixup instance fills the table with the wrappers at *P*.
//!   A trampoline called before *P* traps on the empty table entry: it never reaches the
//!   import unmonitored.
//! * The new items are inserted where no original reference can name them (the original
//!   indices are remapped around them), so the module's own wiring cannot reach the raw
//!   lowering, the monitor's exports or its table.
//!
//! Refused with an error (never emitted unmonitored): a monitored import instance or
//! function used other than by `alias export` and `canon lower` (passed whole to a
//! nested component, exported, bundled into an instance); lowerings with `async`,
//! non-UTF-8 strings, or different memories; nested components that alias outer items
//! other than types; a component that already carries an irm monitor.
//!
//! With [`crate::WeaveOptions::host_hooks`] the component also imports
//! `irm:monitor/hooks` (one function per monitored event, `hook-e<N>`, with the core hook
//! type lifted to `s32`/`s64` parameters), lowered and handed to the monitor as its `irm`
//! hooks. Without hooks a deny traps without a message (a component has no
//! `fd_write`) and audits are refused.
mod build;
mod read;
mod rewrite;

use policy_lang::ir::{Program, Verdict};

use crate::{WeaveError, WeaveOptions, Woven};

/// The component import of the host hooks.
pub const HOOK_INTERFACE: &str = "irm:monitor/hooks";

/// The hook function of event `event` in [`HOOK_INTERFACE`].
pub fn hook_name(event: u32) -> String {
    format!("hook-e{event}")
}

/// Whether `wasm` (binary) is a component rather than a core module.
pub fn is_component(wasm: &[u8]) -> bool {
    wasmparser::Parser::is_component(wasm)
}

/// Weaves `program` into the component `input`.
pub(crate) fn weave(
    input: &[u8],
    program: &Program,
    options: &WeaveOptions,
) -> Result<Woven, WeaveError> {
    let (comp, bodies) = read::read(input)?;
    let prefix = if options.host_hooks {
        None
    } else {
        read::prefix(input)?
    };
    // While the weave goes on, a second thread validates the output's prefix (the
    // input's, byte for byte), handing the validator over, then the input's function
    // bodies; an invalid one refuses the input, whatever the weave made of it.
    // Both threads take bodies from one queue: this one once its weave is done.
    let bodies = std::sync::Mutex::new(bodies.into_iter());
    std::thread::scope(|scope| {
        let (give, take) = std::sync::mpsc::channel();
        let prefix_bytes = prefix.as_ref().map(|p| p.bytes.as_slice());
        let bodies = &bodies;
        let checking = scope.spawn(move || {
            if let Some(bytes) = prefix_bytes {
                let _ = give.send(validate_prefix(bytes));
            }
            validate_bodies(bodies)
        });
        let woven = weave_read(input, &comp, program, options, prefix.as_ref(), take);
        let here = validate_bodies(bodies);
        match (checking.join(), here) {
            (Ok(Ok(())), Ok(())) => woven,
            (Ok(Err(e)), _) | (_, Err(e)) => Err(crate::validate::invalid(e)),
            (Err(_), _) => Err(WeaveError::Internal {
                message: "validating the component's function bodies panicked".into(),
            }),
        }
    })
}

/// A validator that has validated the component-level sections of `prefix` (a component
/// of [`read::Prefix`] sections), ready for what follows them.
fn validate_prefix(prefix: &[u8]) -> Result<wasmparser::Validator, wasmparser::BinaryReaderError> {
    let mut v = wasmparser::Validator::new_with_features(features());
    let mut parser = wasmparser::Parser::new(0);
    let mut rest = prefix;
    // Each section, but not the end: the component goes on.
    while let wasmparser::Chunk::Parsed { consumed, payload } = parser.parse(rest, false)? {
        rest = &rest[consumed..];
        v.payload(&payload)?;
        if rest.is_empty() {
            break;
        }
    }
    Ok(v)
}

/// Validates bodies from the shared queue `bodies` until it is empty; the first invalid
/// one's error (the other thread then stops at its next chunk: the queue is emptied).
fn validate_bodies(
    bodies: &std::sync::Mutex<<read::Bodies<'_> as IntoIterator>::IntoIter>,
) -> Result<(), wasmparser::BinaryReaderError> {
    // A few at a time: taking the lock per body would cost more than small bodies do.
    const CHUNK: usize = 8;
    let mut allocs = wasmparser::FuncValidatorAllocations::default();
    loop {
        let chunk: Vec<_> = match bodies.lock() {
            Ok(mut queue) => queue.by_ref().take(CHUNK).collect(),
            // The other thread panicked holding the queue: its join reports it.
            Err(_) => return Ok(()),
        };
        if chunk.is_empty() {
            return Ok(());
        }
        for (f, body) in chunk {
            let mut v = f.into_validator(allocs);
            if let Err(e) = v.validate(&body) {
                // Nothing more to learn: the input is refused.
                if let Ok(mut queue) = bodies.lock() {
                    queue.by_ref().for_each(drop);
                }
                return Err(e);
            }
            allocs = v.into_allocations();
        }
    }
}

/// [`weave`] of a component read (and structurally validated) as `comp`.
fn weave_read(
    input: &[u8],
    comp: &read::Component,
    program: &Program,
    options: &WeaveOptions,
    prefix: Option<&read::Prefix>,
    validated_prefix: std::sync::mpsc::Receiver<
        Result<wasmparser::Validator, wasmparser::BinaryReaderError>,
    >,
) -> Result<Woven, WeaveError> {
    let view = program
        .restricted_to_imports(comp.imported_functions())
        .for_component();
    let plan = read::plan(comp, &view)?;
    if view.tracks() {
        handles_arrive_only_through_the_catalogue(comp, &view)?;
    }
    let stub = build::stub(&plan);
    // The stub's few bodies are validated on this thread: no pool to start.
    let core = crate::CoreOptions {
        hook_strings: options.host_hooks,
        threads: 1,
        // Validated with the woven component (`validate_output`).
        validate_output: false,
        ..options.into()
    };
    let monitor = crate::weave_core(&stub, &view, &core)?;
    if plan.imports.is_empty() {
        // Nothing any policy decides is reachable from the component's code: it stays as
        // it is, and the monitor's report says why each policy has nothing to do.
        let mut report = monitor.report;
        report.input_size = input.len();
        report.output_size = input.len();
        report.component = Some(Default::default());
        explain_preview1_policies(&mut report, &view);
        return Ok(Woven {
            wasm: input.to_vec(),
            report,
        });
    }
    if !options.host_hooks {
        if let Some((p, t)) = view.policies.iter().find_map(|p| {
            p.acts()
                .then(|| {
                    p.live()
                        .find(|t| t.verdict == Verdict::Audit)
                        .map(|t| (p, t))
                })
                .flatten()
        }) {
            return Err(WeaveError::Component {
                why: format!(
                    "policy `{}` audits (transition at {}), and a component woven for any \
                     engine has no channel to write audit lines to; run it with `irm run`, \
                     which receives audits through host hooks",
                    p.name, t.origin
                ),
            });
        }
    }
    let (wasm, interposed) = rewrite::rewrite(input, &plan, &monitor.wasm, &view, prefix)?;
    let resumed = match prefix {
        Some(p) => {
            let v = validated_prefix.recv().map_err(|_| WeaveError::Internal {
                message: "the prefix's validation ended without a result".into(),
            })?;
            Some((v.map_err(crate::validate::invalid)?, p.sections.len()))
        }
        None => None,
    };
    if let Err(e) = validate_output(&wasm, rewrite::inserted_modules(&plan), resumed) {
        return Err(WeaveError::Internal {
            message: format!(
                "the woven component does not validate: {} (at byte offset {:#x} of the output)",
                e.message(),
                e.offset()
            ),
        });
    }
    let mut report = monitor.report;
    report.input_size = input.len();
    report.output_size = wasm.len();
    report.component = Some(interposed);
    explain_preview1_policies(&mut report, &view);
    name_component_imports(&mut report);
    Ok(Woven { wasm, report })
}

/// A monitor that asks what a stream or descriptor is learns every one from the catalogue
/// calls that hand them out (`policy_lang::handles`, `policy_lang::descriptors`). They
/// could also arrive through an import outside the catalogue (`wasi:http`'s bodies, a
/// custom interface) or through the parameters of an export the host calls, unseen; such
/// a component is refused.
fn handles_arrive_only_through_the_catalogue(
    comp: &read::Component,
    view: &Program,
) -> Result<(), WeaveError> {
    use policy_lang::wit;
    let policy = view
        .policies
        .iter()
        .find(|p| p.tracks())
        .map_or("?", |p| p.name.as_str());
    let refuse = |what: String| WeaveError::Component {
        why: format!(
            "policy `{policy}` asks what a stream or descriptor is, which the monitor \
             learns from the WASI 0.2 calls that hand them out; {what}, where they could \
             arrive unseen"
        ),
    };
    if let Some(name) = comp
        .callable_imports
        .iter()
        .find(|n| !wit::is_catalogue_interface(n))
    {
        return Err(refuse(format!(
            "the component imports `{name}`, which is not a WASI 0.2 interface the monitor \
             knows"
        )));
    }
    let run = |(name, kind): &&(String, wasmparser::ComponentExternalKind)| {
        *kind == wasmparser::ComponentExternalKind::Instance
            && wit::split_interface(name).is_some_and(|(i, v)| {
                i == "wasi:cli/run"
                    && v.and_then(wit::canonical_version) == wit::canonical_version(wit::VERSION)
            })
    };
    if let Some((name, _)) = comp.exports.iter().find(|e| !run(e)) {
        return Err(refuse(format!(
            "the component exports `{name}`, which the host may call with streams or \
             descriptors (only a command's `wasi:cli/run` is woven with such a policy)"
        )));
    }
    Ok(())
}

/// The monitor's report names its stub's imports (`module.field#index`, a second
/// lowering's module with `+irm.K`); a component's user knows them as `module.field`.
fn name_component_imports(report: &mut crate::WeaveReport) {
    let plain = |name: &str| -> String {
        let name = name.split('#').next().unwrap_or(name);
        match name.split_once("+irm.") {
            Some((module, rest)) => match rest.split_once('.') {
                Some((_, field)) => format!("{module}.{field}"),
                None => name.to_string(),
            },
            None => name.to_string(),
        }
    };
    // Each name once, in order.
    let plain_once = |names: &[String]| -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        names
            .iter()
            .map(|n| plain(n))
            .filter(|n| seen.insert(n.clone()))
            .collect()
    };
    for p in &mut report.policies {
        p.wrapped_imports = plain_once(&p.wrapped_imports);
    }
    for w in &mut report.wrapped {
        w.import = plain(&w.import);
    }
    report.tracking_imports = plain_once(&report.tracking_imports);
}

/// A policy that names only WASI preview 1 functions can never act in a component; its
/// report says so, and what to write instead, rather than only "not imported".
fn explain_preview1_policies(report: &mut crate::WeaveReport, view: &Program) {
    for (p, r) in view.policies.iter().zip(&mut report.policies) {
        let preview1 =
            |e: &u32| policy_lang::wasi::is_wasi_module(&view.events[*e as usize].module);
        let events: Vec<u32> = p.transitions.iter().map(|t| t.event).collect();
        if !r.effective && !events.is_empty() && events.iter().all(preview1) {
            r.why = "it names WASI preview 1 functions, and a component imports WASI 0.2 \
                     interfaces instead: name their WIT functions, e.g. \
                     `event e = \"wasi:sockets/tcp@0.2.x\".\"[method]tcp-socket.start-connect\";` \
                     (policies/files-or-network.pol)"
                .into();
        }
    }
}

/// Validates a woven component: every section, and the function bodies of the first
/// `inserted` top-level core modules (the ones the weave added). The other core modules
/// are the input's, copied byte for byte, and were validated as part of it; a core
/// module's validity depends on its bytes alone, so their bodies are not validated again
/// (most of a component's validation time). With `resumed`, a validator that has already
/// validated the output's first sections (the input's prefix, which the output repeats
/// byte for byte) and how many: validation resumes after them.
fn validate_output(
    wasm: &[u8],
    inserted: usize,
    resumed: Option<(wasmparser::Validator, usize)>,
) -> Result<(), wasmparser::BinaryReaderError> {
    // A validator that has seen the prefix skips its sections (and the header).
    let (mut v, skip) = match resumed {
        Some((v, sections)) => (v, 1 + sections),
        None => (wasmparser::Validator::new_with_features(features()), 0),
    };
    // Open nested items (true for a core module) below the top-level component.
    let mut open: Vec<bool> = Vec::new();
    let mut top_modules = 0usize;
    let mut checking = false;
    for payload in wasmparser::Parser::new(0).parse_all(wasm).skip(skip) {
        let payload = payload?;
        match &payload {
            wasmparser::Payload::ModuleSection { .. } => {
                if open.is_empty() {
                    top_modules += 1;
                    checking = top_modules <= inserted;
                }
                open.push(true);
            }
            wasmparser::Payload::ComponentSection { .. } => open.push(false),
            _ => {}
        }
        let end = matches!(payload, wasmparser::Payload::End(_));
        if let wasmparser::ValidPayload::Func(f, body) = v.payload(&payload)? {
            if checking && open.len() == 1 {
                f.into_validator(Default::default()).validate(&body)?;
            }
        }
        if end && open.pop().is_some() && open.is_empty() {
            checking = false;
        }
    }
    Ok(())
}

/// What a component is validated against: the core proposals wasmtime enables by default
/// and the component model (without its async and GC extensions, which are refused).
pub(crate) fn features() -> wasmparser::WasmFeatures {
    crate::features() | wasmparser::WasmFeatures::COMPONENT_MODEL
}
