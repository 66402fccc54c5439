//! How a command that did not succeed is shown, and the exit code it ends with. This is
//! the one place either is decided; the codes are those of the README's "Commands":
//!
//! | code | when |
//! |---|---|
//! | 0 | success |
//! | 1 | an error (bad input, I/O, policies that do not compile, failing trace tests) |
//! | 2 | a usage error (clap: unknown option, malformed value) |
//! | 86 | a policy stopped the program (`irm run`) |
//! | 134 | the program trapped (`irm run`) |
//! | other | the program's own exit code (`irm run`) |
use crate::ui::Ui;
use monitor_rt::RunError;
use std::process::ExitCode;

/// `irm run`'s program did not finish normally; `verbose` adds its Wasm backtrace.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RunFailed {
    pub error: RunError,
    pub verbose: bool,
}

/// Trace tests failed; the command has printed each failure and the summary.
#[derive(Debug, thiserror::Error)]
#[error("failed trace tests: {failed}")]
pub struct TestsFailed {
    pub failed: usize,
}

/// The exit code of a failed command.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(r) = e.downcast_ref::<RunFailed>() {
        r.error.exit_code()
    } else if let Some(usage) = e.downcast_ref::<clap::Error>() {
        clap_code(usage)
    } else {
        1
    }
}

/// Prints `e` on stderr as the user should see it: policy diagnostics rendered with their
/// sources, a run's violation or trap report, nothing more for failing trace tests (their
/// report is on stdout), and `irm: error: ...` with the whole context chain otherwise.
pub fn show(e: &anyhow::Error, ui: &Ui) {
    if let Some(d) = e.downcast_ref::<policy_lang::Diagnostics>() {
        eprint!("{}", d.render_styled(ui.style));
        let n = d.errors().count();
        eprintln!(
            "irm: {n} error{} in the policies",
            if n == 1 { "" } else { "s" }
        );
    } else if let Some(r) = e.downcast_ref::<RunFailed>() {
        show_run(r, ui);
    } else if let Some(usage) = e.downcast_ref::<clap::Error>() {
        let _ = usage.print();
    } else if !e.is::<TestsFailed>() && !e.is::<crate::cmd::check::NotCertified>() {
        eprintln!("{} {e:#}", ui.error_prefix());
    }
}

fn show_run(r: &RunFailed, ui: &Ui) {
    match &r.error {
        RunError::Exit(_) => {}
        RunError::Violation(v) => eprintln!("{}", v.render(r.verbose)),
        RunError::Trap { message, backtrace } => {
            eprintln!("irm: the program trapped (not a policy violation): {message}");
            match (backtrace, r.verbose) {
                (Some(b), true) => eprintln!("wasm backtrace:\n{b}"),
                (_, false) => eprintln!("(run with -v for the wasm backtrace)"),
                _ => {}
            }
        }
        other => eprintln!("{} {other}", ui.error_prefix()),
    }
}

/// A command line clap could not parse: its message and usage line (or the help and
/// version texts, which are not failures), and clap's exit code (2 for usage errors).
/// clap leaves the usage line out when a value parser refuses a value; it is added here,
/// as wasmtime's CLI shows it, so every usage error says how the command is used.
pub fn usage(mut e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue};
    if e.use_stderr() && e.get(ContextKind::Usage).is_none() {
        if let Some(usage) = invoked_usage() {
            e.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
        }
    }
    let _ = e.print();
    ExitCode::from(clap_code(&e))
}

/// The usage line of the subcommand named on the command line, if any.
fn invoked_usage() -> Option<clap::builder::StyledStr> {
    let mut irm = <crate::Cli as clap::CommandFactory>::command();
    irm.build();
    let name = std::env::args()
        .skip(1)
        .find(|a| irm.find_subcommand(a).is_some())?;
    Some(irm.find_subcommand_mut(&name)?.render_usage())
}

/// A usage error found after parsing (options that do not go together), shown as clap
/// shows its own: the message and the usage line of `subcommand`; exit code 2.
pub fn usage_error(subcommand: &str, message: &str) -> anyhow::Error {
    let mut irm = <crate::Cli as clap::CommandFactory>::command();
    irm.build();
    let sub = irm
        .find_subcommand_mut(subcommand)
        .expect("usage_error names a subcommand of irm");
    let e = clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, message);
    anyhow::Error::new(e.format(sub))
}

fn clap_code(e: &clap::Error) -> u8 {
    u8::try_from(e.exit_code()).unwrap_or(2)
}
