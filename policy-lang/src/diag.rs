//! Located diagnostics and their one stable rendering:
//!
//! ```text
//! error: unknown event `path_opn`
//!   --> policies/x.pol:7:6
//!    |
//!  7 |   on path_opn -> deny "x";
//!    |      ^^^^^^^^
//!    = hint: did you mean `path_open`?
//! ```
use crate::ast::Span;
use std::fmt;
use std::ops::Range;

/// A policy source: its name (a path, used to resolve `include`s and in messages) and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One message about the sources. `line` and `col` are 1-based (`col` counts characters);
/// a diagnostic without a location (e.g. a file that cannot be read) has `line == 0` and
/// an empty `span`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// The source's name; empty when the diagnostic has no location.
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// Byte range in the source text.
    pub span: Range<usize>,
    pub hint: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A diagnostic located at `span` of `sources[span.file]`.
    pub fn at(
        severity: Severity,
        sources: &[Source],
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        let (file, line, col, range) = match sources.get(span.file) {
            Some(src) => {
                let start = floor_char_boundary(&src.text, span.start.min(src.text.len()));
                let end = floor_char_boundary(&src.text, span.end.clamp(start, src.text.len()));
                // A scan up to `start`: cheaper than a `LineIndex` for one location, and
                // diagnostics near the top of a big file (unreachable states) are common.
                let line_start = src.text[..start].rfind('\n').map_or(0, |i| i + 1);
                let line = src.text[..start].matches('\n').count() + 1;
                let col = src.text[line_start..start].chars().count() + 1;
                (src.name.clone(), line, col, start..end)
            }
            None => (String::new(), 0, 0, 0..0),
        };
        Diagnostic {
            severity,
            message: message.into(),
            file,
            line,
            col,
            span: range,
            hint: None,
            notes: Vec::new(),
        }
    }

    /// A diagnostic that refers to no source location.
    pub fn unlocated(severity: Severity, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            message: message.into(),
            file: String::new(),
            line: 0,
            col: 0,
            span: 0..0,
            hint: None,
            notes: Vec::new(),
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col`, or an empty string without a location.
    pub fn location(&self) -> String {
        if self.line == 0 {
            String::new()
        } else {
            format!("{}:{}:{}", self.file, self.line, self.col)
        }
    }

    /// Renders the diagnostic with the source line and a caret under the span. `sources`
    /// should contain the source the diagnostic names; without it the code line is omitted.
    pub fn render(&self, sources: &[Source]) -> String {
        let mut out = String::new();
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out.push_str(&format!("{label}: {}\n", self.message));
        let pad = if self.line == 0 {
            2
        } else {
            self.line.to_string().len() + 1
        };
        let blank = " ".repeat(pad);
        if self.line > 0 {
            out.push_str(&format!("{blank}--> {}\n", self.location()));
            if let Some(src) = sources.iter().find(|s| s.name == self.file) {
                let text = &src.text;
                let start = floor_char_boundary(text, self.span.start.min(text.len()));
                let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
                let code = text[line_start..line_end].trim_end_matches('\r');
                let end = floor_char_boundary(text, self.span.end.clamp(start, line_end));
                // Tabs are shown as four spaces so the caret stays aligned.
                let shown = |s: &str| s.replace('\t', "    ");
                let indent = shown(&text[line_start..start]).chars().count();
                let width = shown(&text[start..end]).chars().count().max(1);
                out.push_str(&format!("{blank} |\n"));
                out.push_str(&format!("{:>pad$} | {}\n", self.line, shown(code)));
                out.push_str(&format!(
                    "{blank} | {}{}\n",
                    " ".repeat(indent),
                    "^".repeat(width)
                ));
            }
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("{blank} = hint: {hint}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("{blank} = note: {note}\n"));
        }
        out
    }
}

/// Line starts of a source, so many locations in one file cost a binary search each
/// instead of a scan from the start (a 1,000-transition policy records 1,000 origins).
#[derive(Clone, Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of byte `offset` of `text`, exactly as
    /// [`Diagnostic::at`] computes them.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let start = floor_char_boundary(text, offset.min(text.len()));
        let line = self.starts.partition_point(|&s| s <= start);
        let line_start = self.starts[line - 1];
        (line, text[line_start..start].chars().count() + 1)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A failed compilation: at least one error, plus any warnings, in the order found, with
/// the sources needed to render them.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Vec<Source>,
}

impl Diagnostics {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// Every diagnostic rendered, separated by blank lines.
    pub fn render(&self) -> String {
        render_all(&self.diagnostics, &self.sources)
    }
}

/// Renders diagnostics separated by blank lines.
pub fn render_all(diagnostics: &[Diagnostic], sources: &[Source]) -> String {
    diagnostics
        .iter()
        .map(|d| d.render(sources))
        .collect::<Vec<_>>()
        .join("\n")
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for Diagnostics {}

/// The candidate closest to `name` by edit distance, if it is close enough to be a likely
/// typo (at most a third of the name's length, and at least one edit allowed).
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_line_and_a_caret_under_the_span() {
        let src = Source {
            name: "p.pol".into(),
            text: "a\nb\n  on path_opn -> deny \"x\";\n".into(),
        };
        let d = Diagnostic::at(
            Severity::Error,
            std::slice::from_ref(&src),
            Span {
                file: 0,
                start: 9,
                end: 17,
            },
            "unknown event `path_opn`",
        )
        .with_hint("did you mean `path_open`?");
        assert_eq!(
            d.render(&[src]),
            "error: unknown event `path_opn`\n  --> p.pol:3:6\n   |\n 3 |   on path_opn -> deny \"x\";\n   |      ^^^^^^^^\n   = hint: did you mean `path_open`?\n"
        );
    }

    #[test]
    fn suggests_the_closest_name() {
        assert_eq!(
            suggest("path_opn", ["path_open", "fd_read"]),
            Some("path_open".into())
        );
        assert_eq!(suggest("zzz", ["path_open"]), None);
    }
}

#[cfg(test)]
mod line_index_tests {
    use super::*;

    #[test]
    fn line_index_agrees_with_diagnostic_locations_at_every_offset() {
        let text = "policy p {\n  on fd_read -> deny \"é\";\n\n}\nlast";
        let sources = [Source {
            name: "f.pol".into(),
            text: text.into(),
        }];
        let index = LineIndex::new(text);
        for offset in 0..=text.len() + 2 {
            let span = Span {
                file: 0,
                start: offset,
                end: offset,
            };
            let d = Diagnostic::at(Severity::Error, &sources, span, "");
            assert_eq!(
                index.line_col(text, offset),
                (d.line, d.col),
                "offset {offset}"
            );
        }
    }
}
