//! Why a module cannot be woven. Every variant names the fix or the thing involved
//! (byte offset, function index, import name, policy line), because the person reading it
//! usually did not write the module.
use thiserror::Error;

/// A weave that cannot produce a correctly monitored module. The weaver never falls back
/// to emitting an unmonitored or partially monitored module.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WeaveError {
    /// A component irm cannot monitor completely.
    #[error("cannot weave this component: {why}")]
    Component { why: String },

    #[error("the input is not a WebAssembly module: {message} (at byte offset {offset:#x})")]
    Malformed { offset: usize, message: String },

    #[error("the input module is invalid: {message} (at byte offset {offset:#x})")]
    Invalid { offset: usize, message: String },

    #[error(
        "section with id {id} at byte offset {offset:#x} is not understood by irm; refusing \
         to pass it through unmonitored"
    )]
    UnknownSection { id: u8, offset: usize },

    #[error(
        "the module is already woven by irm (it has a `{section}` custom section); weave the \
         original module instead"
    )]
    AlreadyWoven { section: &'static str },

    #[error(
        "import {import} (function {func_index}) has type {found}, but event `{event}` of \
         the policy expects {expected} (event used at {origin}); fix the event declaration \
         or weave a module built for this interface"
    )]
    SignatureMismatch {
        import: String,
        func_index: u32,
        event: String,
        expected: String,
        found: String,
        origin: String,
    },

    #[error(
        "import {import} is a {kind}, but event `{event}` of the policy (used at {origin}) \
         needs a function import"
    )]
    NotAFunction {
        import: String,
        kind: &'static str,
        event: String,
        origin: String,
    },

    #[error(
        "the module imports {import}, which starts threads, and policies {policies} would be \
         enforced; each thread instance would get fresh monitor state, so irm refuses to \
         weave it"
    )]
    ThreadSpawn { import: String, policies: String },

    #[error(
        "policy `{policy}` tests string arguments (transition at {origin}) but memory 0 is \
         shared: another thread could change the string between the check and the call; \
         add `allow_shared_memory_strings` to the policy if that is acceptable"
    )]
    SharedMemoryStrings { policy: String, origin: String },

    #[error(
        "policy `{policy}` tests strings or descriptors (transition at {origin}) but {why}; \
         irm reads them from the 32-bit memory the host reads"
    )]
    NoStringMemory {
        policy: String,
        origin: String,
        why: String,
    },

    #[error(
        "import {import} (function {func_index}) spells WASI the preview 0 way, and {why}; \
         irm refuses to monitor it under preview 1's meaning"
    )]
    Preview0 {
        import: String,
        func_index: u32,
        why: String,
    },

    #[error(
        "policy `{policy}` audits (transition at {origin}), but the module has no way to \
         deliver an audit line (it imports no WASI `fd_write` and exports no `memory`); add \
         `allow undelivered audits;` to the policy, or run it with `irm run`, whose host \
         receives the audits"
    )]
    NoAuditChannel { policy: String, origin: String },

    #[error("policy `{policy}`: the pattern {pattern} at {origin} is too complex: {message}")]
    PatternTooComplex {
        policy: String,
        origin: String,
        pattern: String,
        message: String,
    },

    #[error("policy `{policy}` (transition at {origin}): {message}")]
    UnsupportedProgram {
        policy: String,
        origin: String,
        message: String,
    },

    #[error("the program is malformed: {message}")]
    BadProgram { message: String },

    #[error("the module already uses the name {name}, which irm reserves ({why})")]
    ReservedName { name: String, why: &'static str },

    #[error("the `irm.monitor` section is malformed: {message}")]
    Manifest { message: String },

    #[error("internal error in irm (please report it): {message}")]
    Internal { message: String },
}

impl WeaveError {
    pub(crate) fn malformed(e: wasmparser::BinaryReaderError) -> Self {
        WeaveError::Malformed {
            offset: e.offset(),
            message: e.message().to_string(),
        }
    }
}
