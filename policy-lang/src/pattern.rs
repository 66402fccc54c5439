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
use std::collections::HashMap;

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

/// A Thompson-style NFA: node 0 is the start, `accept` the only accepting node.
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

    /// An upper bound on the number of states subset construction reaches.
    ///
    /// Let `f` be the first node that is not a plain link (exactly one byte edge, to the
    /// next node, and no epsilon edge). If nothing at or after `f` leads back before it,
    /// every reachable set is a singleton `{i}` with `i < f` or a subset of the nodes from
    /// `f` on, so there are at most `f + 2^(n - f)` of them. Globs put their wildcards
    /// after a literal directory prefix, which keeps `n - f` small.
    fn dfa_state_bound(&self) -> usize {
        let n = self.edges.len();
        let link = |i: usize| {
            self.eps[i].is_empty() && matches!(self.edges[i][..], [(_, m)] if m == i + 1)
        };
        let f = (0..n).find(|&i| !link(i)).unwrap_or(n);
        let back = (f..n).any(|i| {
            self.eps[i].iter().any(|&m| m < f) || self.edges[i].iter().any(|&(_, m)| m < f)
        });
        if back || n - f >= usize::BITS as usize - 1 {
            return usize::MAX;
        }
        f.saturating_add(1 << (n - f))
    }

    /// The epsilon closure of every single node, as bitsets of `words` words each: node
    /// `n`'s closure is `closures[n * words..(n + 1) * words]`. The closure of a set is the
    /// union of its members' closures, so subset construction never walks epsilon edges.
    fn closures(&self, words: usize) -> Vec<u64> {
        let mut closures = vec![0u64; self.edges.len() * words];
        let mut stack = Vec::new();
        for n in 0..self.edges.len() {
            let set = &mut closures[n * words..(n + 1) * words];
            set[n / 64] |= 1 << (n % 64);
            stack.push(n);
            while let Some(k) = stack.pop() {
                for &m in &self.eps[k] {
                    let (w, bit) = (m / 64, 1u64 << (m % 64));
                    if set[w] & bit == 0 {
                        set[w] |= bit;
                        stack.push(m);
                    }
                }
            }
        }
        closures
    }

    /// Subset construction; fails when it needs more than [`MAX_DFA_STATES`] states.
    fn to_dfa(&self) -> Result<Dfa, PatternTooComplex> {
        // Subset construction with NFA state sets as bitsets: they are the hash keys of
        // the DFA states, and cheap to hash, compare and step. Compiling a policy builds
        // one DFA per string guard (to bound its size), so this is on the compile path:
        // steps go into one scratch set and allocate only for a new DFA state.
        let words = self.edges.len().div_ceil(64).max(1);
        let closures = self.closures(words);
        let closure = |n: usize| &closures[n * words..(n + 1) * words];
        let accepts = |set: &[u64]| set[self.accept / 64] & (1 << (self.accept % 64)) != 0;
        let start: Box<[u64]> = closure(0).into();
        let mut sets: Vec<Box<[u64]>> = vec![start.clone()];
        let mut accepting = vec![accepts(&start)];
        let mut index: HashMap<Box<[u64]>, u32> = HashMap::new();
        index.insert(start, 0);
        // Bytes the pattern never names (and that are not `/`) all behave alike: step once
        // for a representative of them and once per named byte, then fill the row.
        let mut named = [false; 256];
        named[b'/' as usize] = true;
        for edges in &self.edges {
            for (class, _) in edges {
                if let Class::Byte(c) = class {
                    named[*c as usize] = true;
                }
            }
        }
        let probes: Vec<u8> = (0..=255u8).filter(|b| named[*b as usize]).collect();
        let other = (0..=255u8).find(|b| !named[*b as usize]);
        let mut table = Vec::new();
        let mut next = vec![0u64; words];
        let mut i = 0;
        while i < sets.len() {
            let set = std::mem::take(&mut sets[i]);
            // Unnamed bytes first, so the row starts filled with their common target.
            let mut row = [0u32; 256];
            for probe in other.iter().chain(&probes) {
                next.fill(0);
                for n in ones(&set) {
                    for &(class, m) in &self.edges[n] {
                        if class.accepts(*probe) {
                            for (w, c) in next.iter_mut().zip(closure(m)) {
                                *w |= c;
                            }
                        }
                    }
                }
                let id = match index.get(&next[..]) {
                    Some(&id) => id,
                    None => {
                        if sets.len() >= MAX_DFA_STATES {
                            return Err(PatternTooComplex);
                        }
                        let id = sets.len() as u32;
                        let key: Box<[u64]> = next.as_slice().into();
                        accepting.push(accepts(&key));
                        index.insert(key.clone(), id);
                        sets.push(key);
                        id
                    }
                };
                if Some(*probe) == other {
                    row.fill(id);
                } else {
                    row[*probe as usize] = id;
                }
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

    /// Fails exactly when [`Pattern::to_dfa`] would, without building the DFA when a cheap
    /// bound already shows it is small enough (the policy compiler checks every string
    /// guard; the weaver builds the DFAs it emits).
    pub fn check_dfa_size(&self) -> Result<(), PatternTooComplex> {
        let nfa = Nfa::build(self);
        if nfa.dfa_state_bound() <= MAX_DFA_STATES {
            return Ok(());
        }
        nfa.to_dfa().map(|_| ())
    }

    /// Compiles the pattern to a DFA, or fails when it needs more than
    /// [`MAX_DFA_STATES`] states.
    pub fn to_dfa(&self) -> Result<Dfa, PatternTooComplex> {
        Nfa::build(self).to_dfa()
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

    #[test]
    fn a_pattern_needing_too_many_states_is_rejected_by_both_checks() {
        let p = glob("**a?????????????");
        assert_eq!(p.to_dfa().unwrap_err(), PatternTooComplex);
        assert_eq!(p.check_dfa_size().unwrap_err(), PatternTooComplex);
    }

    #[test]
    fn a_literal_directory_before_the_wildcards_keeps_the_bound_small() {
        let p = glob("/data/d123/**/*.txt");
        assert!(Nfa::build(&p).dfa_state_bound() <= MAX_DFA_STATES);
        assert!(p.to_dfa().unwrap().state_count() <= Nfa::build(&p).dfa_state_bound());
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

        #[test]
        fn dfa_state_bound_is_an_upper_bound(p in pattern_strategy()) {
            let d = p.to_dfa().unwrap();
            prop_assert!(d.state_count() <= Nfa::build(&p).dfa_state_bound());
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
