//! String patterns on guest byte strings: exact, prefix and glob, and their compiled DFA.
//!
//! Glob syntax, on bytes (`/` is the only separator):
//! * `?` matches one byte other than `/`;
//! * `*` matches any run of bytes without `/` (possibly empty);
//! * `**/` at the start of the pattern or right after a `/` matches zero or more whole
//!   segments (so `**/*.pem` matches `a.pem` and `x/y/a.pem`);
//! * `/**` at the end of the pattern matches the end of the string or `/` followed by
//!   anything (so `/home/*/.ssh/**` matches `/home/u/.ssh` and `/home/u/.ssh/id_rsa`);
//! * any other `**` matches any run of bytes, `/` included;
//! * `\c` matches the byte `c` literally; every other byte matches itself.
//!
//! [`Pattern::matches`] is the specification (a direct NFA simulation);
//! [`Dfa`] is the compiled form the weaver emits as a table. The two are tested to agree.

use crate::ir::Pattern;

/// Upper bound on DFA states, so a hostile pattern cannot blow up weaving.
pub const MAX_DFA_STATES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Byte(u8),
    NotSlash,
    Any,
}

impl Class {
    fn accepts(self, b: u8) -> bool {
        match self {
            Class::Byte(c) => b == c,
            Class::NotSlash => b != b'/',
            Class::Any => true,
        }
    }
}

/// A Thompson-style NFA: node 0 is the start, `accept` the only accepting node.
/// The indices of the set bits of `set`.
fn ones(set: &[u64]) -> impl Iterator<Item = usize> + '_ {
    set.iter().enumerate().flat_map(|(w, &word)| {
        let mut word = word;
        std::iter::from_fn(move || {
            if word == 0 {
                return None;
            }
            let bit = word.trailing_zeros() as usize;
            word &= word - 1;
            Some(w * 64 + bit)
        })
    })
}

#[derive(Debug)]
struct Nfa {
    edges: Vec<Vec<(Class, usize)>>,
    eps: Vec<Vec<usize>>,
    accept: usize,
}

impl Nfa {
    fn node(&mut self) -> usize {
        self.edges.push(Vec::new());
        self.eps.push(Vec::new());
        self.edges.len() - 1
    }

    fn build(pattern: &Pattern) -> Nfa {
        let mut nfa = Nfa {
            edges: Vec::new(),
            eps: Vec::new(),
            accept: 0,
        };
        let mut cur = nfa.node();
        let literal = |nfa: &mut Nfa, cur: &mut usize, bytes: &[u8]| {
            for &b in bytes {
                let n = nfa.node();
                nfa.edges[*cur].push((Class::Byte(b), n));
                *cur = n;
            }
        };
        match pattern {
            Pattern::Exact(s) => literal(&mut nfa, &mut cur, s.as_bytes()),
            Pattern::Prefix(s) => {
                literal(&mut nfa, &mut cur, s.as_bytes());
                nfa.edges[cur].push((Class::Any, cur));
            }
            Pattern::Glob(g) => {
                let g = g.as_bytes();
                let mut i = 0;
                while i < g.len() {
                    let at_segment_start = i == 0 || g[i - 1] == b'/';
                    match g[i] {
                        b'\\' if i + 1 < g.len() => {
                            literal(&mut nfa, &mut cur, &g[i + 1..i + 2]);
                            i += 2;
                        }
                        b'/' if &g[i..] == b"/**" => {
                            // End, or "/" then anything.
                            let end = nfa.node();
                            let rest = nfa.node();
                            nfa.eps[cur].push(end);
                            nfa.edges[cur].push((Class::Byte(b'/'), rest));
                            nfa.edges[rest].push((Class::Any, rest));
                            nfa.eps[rest].push(end);
                            cur = end;
                            i += 3;
                        }
                        b'*' if g.get(i + 1) == Some(&b'*') => {
                            if at_segment_start && g.get(i + 2) == Some(&b'/') {
                                // Zero or more whole segments, each ending in '/'.
                                let inner = nfa.node();
                                let out = nfa.node();
                                nfa.eps[cur].push(out);
                                nfa.edges[cur].push((Class::Any, inner));
                                nfa.edges[cur].push((Class::Byte(b'/'), out));
                                nfa.edges[inner].push((Class::Any, inner));
                                nfa.edges[inner].push((Class::Byte(b'/'), out));
                                cur = out;
                                i += 3;
                            } else {
                                let out = nfa.node();
                                nfa.edges[cur].push((Class::Any, cur));
                                nfa.eps[cur].push(out);
                                cur = out;
                                i += 2;
                            }
                        }
                        b'*' => {
                            let out = nfa.node();
                            nfa.edges[cur].push((Class::NotSlash, cur));
                            nfa.eps[cur].push(out);
                            cur = out;
                            i += 1;
                        }
                        b'?' => {
                            let n = nfa.node();
                            nfa.edges[cur].push((Class::NotSlash, n));
                            cur = n;
                            i += 1;
                        }
                        b => {
                            literal(&mut nfa, &mut cur, &[b]);
                            i += 1;
                        }
                    }
                }
            }
        }
        nfa.accept = cur;
        nfa
    }

    fn closure(&self, set: &mut Vec<usize>) {
        let mut stack = set.clone();
        while let Some(n) = stack.pop() {
            for &m in &self.eps[n] {
                if !set.contains(&m) {
                    set.push(m);
                    stack.push(m);
                }
            }
        }
        set.sort_unstable();
        set.dedup();
    }

    /// [`Nfa::closure`] on a bitset of states.
    fn closure_bits(&self, set: &mut [u64]) {
        let mut stack: Vec<usize> = ones(set).collect();
        while let Some(n) = stack.pop() {
            for &m in &self.eps[n] {
                let (w, bit) = (m / 64, 1u64 << (m % 64));
                if set[w] & bit == 0 {
                    set[w] |= bit;
                    stack.push(m);
                }
            }
        }
    }

    /// [`Nfa::step`] on a bitset of states.
    fn step_bits(&self, set: &[u64], b: u8, words: usize) -> Vec<u64> {
        let mut next = vec![0u64; words];
        for n in ones(set) {
            for (c, m) in &self.edges[n] {
                if c.accepts(b) {
                    next[m / 64] |= 1 << (m % 64);
                }
            }
        }
        self.closure_bits(&mut next);
        next
    }

    fn step(&self, set: &[usize], b: u8) -> Vec<usize> {
        let mut next: Vec<usize> = set
            .iter()
            .flat_map(|&n| self.edges[n].iter())
            .filter(|(c, _)| c.accepts(b))
            .map(|&(_, m)| m)
            .collect();
        self.closure(&mut next);
        next
    }
}

impl Pattern {
    /// Whether `s` matches; the reference semantics.
    pub fn matches(&self, s: &[u8]) -> bool {
        let nfa = Nfa::build(self);
        let mut set = vec![0];
        nfa.closure(&mut set);
        for &b in s {
            set = nfa.step(&set, b);
            if set.is_empty() {
                return false;
            }
        }
        set.contains(&nfa.accept)
    }

    /// Compiles the pattern to a DFA, or fails when it needs more than
    /// [`MAX_DFA_STATES`] states.
    pub fn to_dfa(&self) -> Result<Dfa, PatternTooComplex> {
        let nfa = Nfa::build(self);
        // Subset construction with NFA state sets as bitsets: they are the hash keys of
        // the DFA states, and cheap to hash, compare and step (this dominated compiling
        // big policies when sets were sorted lists).
        let words = nfa.edges.len().div_ceil(64).max(1);
        let mut start = vec![0u64; words];
        start[0] = 1;
        nfa.closure_bits(&mut start);
        let accepts = |set: &[u64]| set[nfa.accept / 64] & (1 << (nfa.accept % 64)) != 0;
        let mut sets: Vec<Vec<u64>> = vec![start.clone()];
        let mut accepting = vec![accepts(&start)];
        let mut index = std::collections::HashMap::new();
        index.insert(start, 0u32);
        // Bytes the pattern never names (and that are not `/`) all behave alike: step once
        // for a representative of them and once per named byte, then fill the row.
        let mut named = [false; 256];
        named[b'/' as usize] = true;
        for edges in &nfa.edges {
            for (class, _) in edges {
                if let Class::Byte(c) = class {
                    named[*c as usize] = true;
                }
            }
        }
        let other = (0..=255u8).find(|b| !named[*b as usize]);
        let mut table = Vec::new();
        let mut i = 0;
        while i < sets.len() {
            let set = std::mem::take(&mut sets[i]);
            let mut row = [0u32; 256];
            let mut other_id = None;
            for b in 0..=255u8 {
                if !named[b as usize] {
                    if let Some(id) = other_id {
                        row[b as usize] = id;
                        continue;
                    }
                }
                let probe = if named[b as usize] {
                    b
                } else {
                    other.unwrap_or(b)
                };
                let next = nfa.step_bits(&set, probe, words);
                let id = match index.get(&next) {
                    Some(&id) => id,
                    None => {
                        if sets.len() >= MAX_DFA_STATES {
                            return Err(PatternTooComplex);
                        }
                        let id = sets.len() as u32;
                        accepting.push(accepts(&next));
                        index.insert(next.clone(), id);
                        sets.push(next);
                        id
                    }
                };
                if !named[b as usize] {
                    other_id = Some(id);
                }
                row[b as usize] = id;
            }
            table.extend_from_slice(&row);
            i += 1;
        }
        Ok(Dfa {
            start: 0,
            accepting,
            table,
        })
    }
}

/// The pattern needs more than [`MAX_DFA_STATES`] DFA states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pattern needs more than {MAX_DFA_STATES} automaton states")]
pub struct PatternTooComplex;

/// A complete DFA over bytes. Invariant: `table.len() == accepting.len() * 256` and every
/// entry is a valid state; the state reached from the empty set of NFA states (if any)
/// loops to itself and is not accepting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dfa {
    pub start: u32,
    pub accepting: Vec<bool>,
    /// `table[state * 256 + byte]` is the next state.
    pub table: Vec<u32>,
}

impl Dfa {
    pub fn state_count(&self) -> usize {
        self.accepting.len()
    }

    pub fn matches(&self, s: &[u8]) -> bool {
        let mut q = self.start;
        for &b in s {
            q = self.table[q as usize * 256 + b as usize];
        }
        self.accepting[q as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn glob(g: &str) -> Pattern {
        Pattern::Glob(g.into())
    }

    #[test]
    fn star_does_not_cross_slash() {
        assert!(glob("/tmp/*").matches(b"/tmp/a"));
        assert!(!glob("/tmp/*").matches(b"/tmp/a/b"));
    }

    #[test]
    fn double_star_crosses_slash() {
        assert!(glob("/data/**x").matches(b"/data/a/b/x"));
    }

    #[test]
    fn leading_double_star_slash_matches_zero_segments() {
        assert!(glob("**/*.pem").matches(b"key.pem"));
        assert!(glob("**/*.pem").matches(b"/etc/ssl/key.pem"));
        assert!(!glob("**/*.pem").matches(b"key.pem.bak"));
    }

    #[test]
    fn trailing_slash_double_star_matches_the_directory_itself() {
        let p = glob("/home/*/.ssh/**");
        assert!(p.matches(b"/home/u/.ssh"));
        assert!(p.matches(b"/home/u/.ssh/id_rsa"));
        assert!(!p.matches(b"/home/u/.sshx"));
        assert!(!p.matches(b"/home/u/v/.ssh/id_rsa"));
    }

    #[test]
    fn question_mark_is_one_non_slash_byte() {
        assert!(glob("a?c").matches(b"abc"));
        assert!(!glob("a?c").matches(b"a/c"));
        assert!(!glob("a?c").matches(b"ac"));
    }

    #[test]
    fn backslash_escapes_wildcards() {
        assert!(glob(r"a\*").matches(b"a*"));
        assert!(!glob(r"a\*").matches(b"ab"));
    }

    #[test]
    fn prefix_and_exact() {
        assert!(Pattern::Prefix("/tmp/".into()).matches(b"/tmp/x"));
        assert!(!Pattern::Prefix("/tmp/".into()).matches(b"/tm"));
        assert!(Pattern::Exact("/etc/shadow".into()).matches(b"/etc/shadow"));
        assert!(!Pattern::Exact("/etc/shadow".into()).matches(b"/etc/shadow2"));
    }

    #[test]
    fn dfa_table_is_complete() {
        let d = glob("**/*.pem").to_dfa().unwrap();
        assert_eq!(d.table.len(), d.state_count() * 256);
        assert!(d.table.iter().all(|&q| (q as usize) < d.state_count()));
    }

    fn pattern_strategy() -> impl Strategy<Value = Pattern> {
        let g = proptest::collection::vec(
            prop_oneof![
                Just("a"),
                Just("b"),
                Just("/"),
                Just("*"),
                Just("**"),
                Just("?"),
                Just("**/"),
                Just("/**")
            ],
            0..6,
        )
        .prop_map(|parts| parts.concat());
        prop_oneof![
            g.prop_map(Pattern::Glob),
            "[ab/]{0,4}".prop_map(Pattern::Exact),
            "[ab/]{0,4}".prop_map(Pattern::Prefix),
        ]
    }

    proptest! {
        #[test]
        fn dfa_agrees_with_reference(p in pattern_strategy(), s in "[ab/]{0,8}") {
            let d = p.to_dfa().unwrap();
            prop_assert_eq!(d.matches(s.as_bytes()), p.matches(s.as_bytes()));
        }

        /// Bytes the pattern never names share one transition per state; strings full of
        /// them (and of the empty byte and high bytes) are decided like the reference.
        #[test]
        fn dfa_agrees_with_reference_on_bytes_the_pattern_does_not_name(
            p in pattern_strategy(),
            s in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'/'), Just(b'z'), Just(0u8), Just(0xffu8)], 0..8),
        ) {
            let d = p.to_dfa().unwrap();
            prop_assert_eq!(d.matches(&s), p.matches(&s));
        }
    }
}
