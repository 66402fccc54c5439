//! Trace tests: the `.traces` file format, its reader and writer, and the judges that
//! decide traces for `irm test`.
//!
//! A `.traces` file sits next to the policy it tests (`no-exfil.pol` ↔ `no-exfil.traces`):
//!
//! ```text
//! // traces for no-exfil.pol
//! with "fragments/extra.pol";              // optional: more policy files to compose with
//!
//! accept "sending without reading is fine" {
//!   sock_send(fd=5)
//! }
//! reject "send after read" at 2 by no_exfil "network send after a file read" {
//!   fd_read(fd=4)
//!   sock_send(fd=5)
//! }
//! accept "sockets get EACCES" {
//!   sock_send(fd=5) => suppress ERRNO_ACCES
//!   path_open(fd=3, path="a.txt", oflags=OFLAGS_CREAT|OFLAGS_TRUNC) -> 0 => audit "file opened"
//! }
//! ```
//!
//! * A step is `event(param=value, ...)`: events by their policy name (or import field),
//!   arguments by parameter name. Missing arguments are `0` / the empty string. Integer
//!   values are constant expressions over integers and named constants (the built-in
//!   WASI ones such as `ERRNO_ACCES`, `OFLAGS_CREAT`) with `| & ^ << >> + - * ~` and
//!   parentheses. String values are quoted (`\" \\ \n \t \0 \xNN` escapes); `oob` stands
//!   for a pointer/length outside memory.
//! * `-> N` gives the import's result for post-call (`after`) transitions (default 0);
//!   `-> trap` says the import trapped after its side effects (no result, no post phase).
//! * `preopen "/tmp";` lines before the first trace name the host's preopened
//!   directories, descriptors 3, 4, ... in order, for every trace; the same lines at the
//!   start of a trace's body replace them for that trace. Without any, only the standard
//!   streams 0, 1 and 2 are open.
//! * `opens [file|dir|socket] N` after a successful `path_open` or `sock_accept` says
//!   which descriptor the host handed out. By default it is the lowest free one from 3,
//!   a file (a directory when opened with `OFLAGS_DIRECTORY`, a socket for
//!   `sock_accept`); the parser follows `fd_close` and `fd_renumber` to know which are
//!   free. An integer parameter given as `oob` is an out-pointer outside memory.
//! * For a component call that hands out streams behind `retptr` (`read-via-stream`,
//!   `write-via-stream`, `append-via-stream`, `finish-connect`, `accept`; see
//!   [`crate::handles`]), `opens N` says it succeeded with stream handle `N` (`N` and
//!   `N + 1` for a connection's input and output streams); without it the call failed.
//!   `get-stdin`, `get-stdout` and `get-stderr` return their handle: `-> N`.
//! * `=> E, E...` lists what that step must report, exactly: each `E` is
//!   `audit ["reason"] [by POLICY]` or `suppress [VALUE] ["reason"] [by POLICY]`. A step
//!   without `=>` must report nothing; audits and suppressions are compared in order.
//! * `reject "name" at N by POLICY ["reason"]` expects the first deny at step N (1-based)
//!   by that policy, with that reason when given.
//!
//! The module follows the life of a trace file:
//! * [`parse`]: text to [`TraceFile`] (grammar `trace/trace.pest`), located errors;
//! * [`load`]: a `.traces` file with its compiled policies ([`load_trace_file`]);
//! * [`write`](mod@write): [`TraceFile`] back to text, which [`parse`] reads back as written
//!   (`irm run --record` writes its runs with it);
//! * [`run`]: the [`Judge`] trait, the reference interpreter as one ([`Interpreter`]),
//!   comparing verdicts with expectations and with each other, and the one printer of
//!   verdicts and results `irm test` uses. Two more judges live in `monitor-rt`, since
//!   they need wasmtime: the woven driver module and host enforcement.
pub mod load;
pub mod parse;
pub mod run;
pub mod write;

pub use load::{load_trace_file, LoadedTraces, TraceFileError};
pub use parse::{
    hand_out, parse_text, parse_traces, parse_with_lines, wasi_constants, Constants, ParsedText,
    TraceError,
};
pub use run::{
    check, disagreement, judge_trace, run_loaded, Interpreter, Judge, JudgeResult, NotApplicable,
    Parting, Problem, Report, TraceResult,
};
pub use write::write;

use crate::interp::{TraceEvent, World};

/// What a trace expects overall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Accept,
    Reject {
        /// 1-based step of the first deny.
        step: usize,
        policy: String,
        /// Checked only when given.
        reason: Option<String>,
    },
}

/// One audit or suppression a step must report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub kind: ExpectKind,
    /// Checked only when given.
    pub reason: Option<String>,
    /// Checked only when given.
    pub policy: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectKind {
    Audit,
    /// The expected return value, when given.
    Suppress(Option<i64>),
}

/// One call of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub call: TraceEvent,
    /// Every audit and suppression the step reports, in order.
    pub expect: Vec<Expectation>,
    /// 1-based line in the `.traces` file (0 for a step not read from a file).
    pub line: usize,
}

/// One named trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub name: String,
    pub expect: Expect,
    /// The host's descriptors at start.
    pub world: World,
    pub steps: Vec<Step>,
    /// 1-based line of the header (0 for a trace not read from a file).
    pub line: usize,
}

impl Trace {
    /// The calls, for [`Judge::judge`].
    pub fn events(&self) -> Vec<TraceEvent> {
        self.steps.iter().map(|s| s.call.clone()).collect()
    }
}

/// A `.traces` file.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceFile {
    /// Extra policy files from `with` lines, as written (relative to the `.traces` file).
    pub with: Vec<String>,
    pub traces: Vec<Trace>,
}
