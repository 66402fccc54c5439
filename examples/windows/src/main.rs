//! `windows-host [--policy P.pol] [--enforce inline|host] [--guest windows.wat] [SCRIPT]`:
//! runs the windows guest with host-provided windows and reports what the host saw.
//!
//! Exit codes as `irm run`: the guest's own, 86 when a policy stopped it, 134 on a trap.
use std::path::PathBuf;
use std::process::ExitCode;

use monitor_rt::{Enforcement, RunError};
use windows_host::{guest_runner, Desktop};

fn usage() -> ExitCode {
    eprintln!(
        "usage: windows-host [--policy P.pol] [--enforce inline|host] [--guest MODULE] [SCRIPT]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut policy: Option<PathBuf> = None;
    let mut enforcement = Enforcement::Inline;
    let mut guest = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/windows.wat"));
    let mut script = "ooocoo".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--policy" => match args.next() {
                Some(p) => policy = Some(p.into()),
                None => return usage(),
            },
            "--enforce" => match args.next().as_deref() {
                Some("inline") => enforcement = Enforcement::Inline,
                Some("host") => enforcement = Enforcement::Host,
                _ => return usage(),
            },
            "--guest" => match args.next() {
                Some(g) => guest = g.into(),
                None => return usage(),
            },
            s if s.starts_with('-') => return usage(),
            s => script = s.to_string(),
        }
    }
    let desktop = Desktop::default();
    let outcome = guest_runner(&desktop, policy.as_deref(), enforcement, &script)
        .build()
        .and_then(|r| r.run_file(&guest));
    for line in desktop.log() {
        eprintln!("host: {line}");
    }
    eprintln!("host: {} window(s) open at the end", desktop.open().len());
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            match &e {
                RunError::Exit(_) => {}
                RunError::Violation(v) => eprintln!("{}", v.render(false)),
                other => eprintln!("windows-host: {other}"),
            }
            ExitCode::from(e.exit_code())
        }
    }
}
