//! The policy compiler on arbitrary bytes: `compile` returns a program or located
//! diagnostics, never panics; a program it returns is then used to parse and run the
//! rest of the input as a `.traces` file, which must not panic either.
//!
//! The input is split at the first NUL byte: policy text before it, trace text after.
//! Seeds: the files in `policies/` and `policy-lang/tests/diagnostics/`.
//!
//! Run: `cd policy-lang/fuzz && cargo +nightly fuzz run compile -- -max_total_time=300`
//! (the stand-in without nightly is `policy-lang/tests/robustness.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy_lang::{interp, trace, Source};

fuzz_target!(|data: &[u8]| {
    let (policy, traces) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(policy).into_owned();
    let sources = vec![Source {
        name: "fuzz.pol".into(),
        text,
    }];
    // Includes read nothing from disk: every include is "not found".
    let no_files = |_: &std::path::Path| -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "fuzzing"))
    };
    match policy_lang::compile_with(sources, &no_files) {
        Err(d) => {
            assert!(
                d.errors().count() > 0,
                "a failed compilation reports an error"
            );
            let _ = d.render();
        }
        Ok(c) => {
            let _ = c.render_warnings();
            let _ = serde_json::to_string(&c.program);
            for i in 0..c.program.policies.len() {
                let _ = policy_lang::dot::to_dot(&c.program, i);
            }
            let text = String::from_utf8_lossy(traces);
            if let Ok(file) =
                trace::parse_traces("fuzz.traces", &text, &c.program, &trace::wasi_constants)
            {
                for t in &file.traces {
                    let v = interp::run_trace_in(&c.program, &t.world, &t.events());
                    let _ = trace::check(&c.program, t, &v);
                }
            }
        }
    }
});
