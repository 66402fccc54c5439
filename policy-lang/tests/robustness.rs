//! A seeded stand-in for the `policy-lang/fuzz` target (which needs nightly and
//! cargo-fuzz): thousands of random and mutated inputs go through `compile`, the
//! diagnostics renderer, the trace parser and the interpreter. Nothing may panic, and a
//! failed compilation always reports at least one located or unlocated error.
use policy_lang::{interp, trace, Source};
use std::fs;
use std::path::{Path, PathBuf};

/// xorshift64*: deterministic, so a failure names its seed and iteration.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every shipped policy and golden input, as seeds.
fn seeds() -> Vec<String> {
    let mut out = Vec::new();
    for dir in [
        "policies",
        "policies/fragments",
        "policy-lang/tests/diagnostics",
    ] {
        let Ok(entries) = fs::read_dir(root().join(dir)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "pol") {
                out.push(fs::read_to_string(&p).expect("seed readable"));
            }
        }
    }
    assert!(out.len() > 20, "seeds found: {}", out.len());
    out
}

/// Tokens that make mutations reach deep into the grammar and the checker.
const TOKENS: &[&str] = &[
    "policy",
    "p",
    "{",
    "}",
    "(",
    ")",
    ";",
    ",",
    "->",
    "=",
    "..",
    ":",
    "on",
    "after",
    "in",
    "when",
    "do",
    "deny",
    "suppress",
    "audit",
    "state",
    "initial",
    "var",
    "const",
    "set",
    "event",
    "include",
    "\"x\"",
    "\"/tmp/**\"",
    "path",
    "fd",
    "result",
    "path_open",
    "fd_write",
    "sock_send",
    "env.f(a: i32) -> i32",
    "glob",
    "startswith",
    "has",
    "==",
    "!=",
    "&&",
    "||",
    "!",
    "-",
    "~",
    "+",
    "*",
    "/",
    "%",
    "<<",
    ">>",
    "0",
    "1",
    "0x7fffffffffffffff",
    "-9223372036854775808",
    "99999999999999999999",
    "/*",
    "*/",
    "//",
    "\"",
    "\\",
    "\n",
    "OFLAGS_CREAT",
    "ERRNO_ACCES",
    "+=",
    "-=",
    "allow shared memory strings",
    "é",
    "\u{0}",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if !bytes.is_empty() => {
                let end = (at + rng.below(16)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(at..at, format!(" {t} ").into_bytes());
            }
            2 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] = rng.next() as u8;
            }
            3 if !bytes.is_empty() => {
                // Duplicate a slice somewhere else.
                let start = rng.below(bytes.len());
                let end = (start + rng.below(40)).min(bytes.len());
                let piece = bytes[start..end].to_vec();
                bytes.splice(at..at, piece);
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(at..at, t.as_bytes().to_vec());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn random_text(rng: &mut Rng) -> String {
    (0..rng.below(60))
        .map(|_| TOKENS[rng.below(TOKENS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Includes resolve against an in-memory file that is itself a mutated seed.
fn compile_no_panic(text: String, include: &str) {
    let include = include.to_string();
    let read = move |_: &Path| -> std::io::Result<String> { Ok(include.clone()) };
    match policy_lang::compile_with(
        vec![Source {
            name: "input.pol".into(),
            text,
        }],
        &read,
    ) {
        Err(d) => {
            assert!(
                d.errors().count() > 0,
                "a failed compilation reports an error"
            );
            let _ = d.render();
        }
        Ok(c) => {
            let _ = c.render_warnings();
            for i in 0..c.program.policies.len() {
                let _ = policy_lang::dot::to_dot(&c.program, i);
            }
            let _ = serde_json::to_string(&c.program).expect("the IR serialises");
        }
    }
}

#[test]
fn mutated_policies_never_panic_the_compiler() {
    let seeds = seeds();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..20_000 {
        let seed = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        compile_no_panic(mutate(&mut rng, seed), &mutate(&mut rng, other));
    }
}

#[test]
fn random_token_soup_never_panics_the_compiler() {
    let mut rng = Rng(0x0bad_cafe_f00d_0001);
    for _ in 0..10_000 {
        let text = random_text(&mut rng);
        compile_no_panic(text, "policy q { on fd_read -> audit; }");
    }
}

#[test]
fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
    for text in [
        format!(
            "policy p {{ on fd_write when {}fd == 1{} -> deny \"x\"; }}",
            "(".repeat(5000),
            ")".repeat(5000)
        ),
        format!(
            "policy p {{ on fd_write when {}(fd == 1) -> deny \"x\"; }}",
            "!".repeat(5000)
        ),
        format!(
            "policy p {{ on fd_write when fd == 1{} -> deny \"x\"; }}",
            " + 1".repeat(20000)
        ),
        format!("const C = {}1;", "-".repeat(5000)),
    ] {
        compile_no_panic(text, "");
    }
}

#[test]
fn mutated_trace_files_never_panic_the_trace_parser_or_interpreter() {
    let mut rng = Rng(0x7ace_7ace_7ace_0001);
    let dir = root().join("policies");
    let mut cases = Vec::new();
    for entry in fs::read_dir(&dir).expect("policies/") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "traces") {
            let loaded = trace::load_trace_file(&p).expect("shipped traces load");
            let text = fs::read_to_string(&p).expect("readable");
            cases.push((loaded.compiled.program, text));
        }
    }
    assert!(!cases.is_empty());
    for _ in 0..10_000 {
        let (program, text) = &cases[rng.below(cases.len())];
        let text = mutate(&mut rng, text);
        let Ok(parsed) = trace::parse_text("m.traces", &text) else {
            continue;
        };
        let _ = parsed.with_lines();
        if let Ok(file) = parsed.resolve(program, &trace::wasi_constants) {
            for t in &file.traces {
                let v = interp::run_trace(program, &t.events());
                let _ = trace::check(program, t, &v);
            }
        }
    }
}

#[test]
fn deeply_nested_trace_values_are_an_error_not_a_stack_overflow() {
    let program = policy_lang::compile(&[Source {
        name: "p.pol".into(),
        text: "policy p { on fd_write -> audit; }".into(),
    }])
    .expect("compiles")
    .program;
    for value in [
        "(".repeat(100_000),
        "-".repeat(100_000),
        "~".repeat(100_000),
    ] {
        let text = format!("accept \"deep\" {{ fd_write(fd={value}1) }}");
        let e = trace::parse_traces("deep.traces", &text, &program, &trace::wasi_constants)
            .expect_err("too deep");
        assert!(e.diagnostic().message.contains("nesting too deep"), "{e}");
    }
}
