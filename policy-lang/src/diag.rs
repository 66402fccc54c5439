//! Located diagnostics and their one stable rendering:
//!
//! ```text
//! error: duplicate state `a`
//!   --> policies/x.pol:3:12
//!    |
//!  2 |   initial state a;
//!    |                 - first declared here
//!  3 |   state b, a;
//!    |            ^
//! ```
//!
//! The primary location is underlined with `^`; [`Label`]s mark further locations with
//! `-` and say what they are. Lines are shown in order, `...` standing for lines left
//! out; a label in another file gets a `::: file:line:col` header of its own. The plain
//! rendering is the contract (golden tests pin it byte for byte); [`Style::Ansi`] adds
//! rustc's colours and nothing else, so stripping the escapes gives the plain text.
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

/// How diagnostics are drawn: plain text, or with ANSI colours for a terminal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Style {
    #[default]
    Plain,
    Ansi,
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
    /// Further locations the message refers to ("first declared here").
    pub labels: Vec<Label>,
    pub hint: Option<String>,
    pub notes: Vec<String>,
}

/// A secondary location of a [`Diagnostic`], located like the diagnostic itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub span: Range<usize>,
    pub message: String,
}

impl Label {
    /// A label at `span` of `sources[span.file]`; unlocated (line 0) when that source is
    /// missing, and then not drawn.
    pub fn at(sources: &[Source], span: Span, message: impl Into<String>) -> Self {
        let (file, line, col, span) = locate(sources, span);
        Label {
            file,
            line,
            col,
            span,
            message: message.into(),
        }
    }
}

/// File name, line, column and clamped byte range of `span`.
fn locate(sources: &[Source], span: Span) -> (String, usize, usize, Range<usize>) {
    match sources.get(span.file) {
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
    }
}

impl Diagnostic {
    /// A diagnostic located at `span` of `sources[span.file]`.
    pub fn at(
        severity: Severity,
        sources: &[Source],
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        let (file, line, col, span) = locate(sources, span);
        Diagnostic {
            severity,
            message: message.into(),
            file,
            line,
            col,
            span,
            labels: Vec::new(),
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
            labels: Vec::new(),
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

    pub fn with_label(mut self, label: Label) -> Self {
        self.labels.push(label);
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

    /// Renders the diagnostic in plain text with the source lines and marks under the
    /// spans. `sources` should contain the sources the diagnostic names; the code lines of
    /// a missing one are omitted.
    pub fn render(&self, sources: &[Source]) -> String {
        self.render_styled(sources, Style::Plain)
    }

    /// [`Diagnostic::render`] in `style`.
    pub fn render_styled(&self, sources: &[Source], style: Style) -> String {
        let paint = Paint::new(style, self.severity);
        let mut out = String::new();
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out.push_str(&format!(
            "{}{}\n",
            paint.level.paint(level),
            paint.emphasis.paint(&format!(": {}", self.message))
        ));
        let snippets = self.snippets(sources);
        let widest = snippets
            .iter()
            .flat_map(|s| s.lines.iter().map(|l| l.number))
            .chain(std::iter::once(self.line))
            .max()
            .unwrap_or(0);
        let pad = if self.line == 0 {
            2
        } else {
            widest.to_string().len() + 1
        };
        let blank = " ".repeat(pad);
        let bar = paint.gutter.paint("|");
        for (i, snippet) in snippets.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!(
                    "{blank}{} {}\n",
                    paint.gutter.paint("-->"),
                    snippet.location
                ));
            } else {
                out.push_str(&format!("{blank} {bar}\n"));
                out.push_str(&format!(
                    "{blank}{} {}\n",
                    paint.gutter.paint(":::"),
                    snippet.location
                ));
            }
            if snippet.lines.is_empty() {
                continue;
            }
            out.push_str(&format!("{blank} {bar}\n"));
            let mut previous: Option<usize> = None;
            for line in &snippet.lines {
                if previous.is_some_and(|p| line.number > p + 1) {
                    out.push_str(&format!("{}\n", paint.gutter.paint("...")));
                }
                previous = Some(line.number);
                let number = paint.gutter.paint(&format!("{:>pad$}", line.number));
                out.push_str(&format!("{number} {bar} {}\n", line.code));
                for row in line.mark_rows(&paint) {
                    out.push_str(&format!("{blank} {bar} {row}\n"));
                }
            }
        }
        let equals = paint.gutter.paint("=");
        if let Some(hint) = &self.hint {
            out.push_str(&format!(
                "{blank} {equals} {}: {hint}\n",
                paint.emphasis.paint("hint")
            ));
        }
        for note in &self.notes {
            out.push_str(&format!(
                "{blank} {equals} {}: {note}\n",
                paint.emphasis.paint("note")
            ));
        }
        out
    }

    /// The locations to draw, grouped by file: the primary location's file first (its
    /// header is `-->`), then every other labelled file in order of first mention.
    fn snippets(&self, sources: &[Source]) -> Vec<Snippet<'_>> {
        if self.line == 0 {
            return Vec::new();
        }
        let mut snippets = vec![Snippet {
            file: &self.file,
            location: self.location(),
            lines: Vec::new(),
        }];
        let mut marks = vec![(&self.file, self.span.clone(), MarkKind::Primary, None)];
        for l in self.labels.iter().filter(|l| l.line > 0) {
            if !snippets.iter().any(|s| s.file == l.file) {
                snippets.push(Snippet {
                    file: &l.file,
                    location: format!("{}:{}:{}", l.file, l.line, l.col),
                    lines: Vec::new(),
                });
            }
            marks.push((
                &l.file,
                l.span.clone(),
                MarkKind::Secondary,
                Some(l.message.as_str()),
            ));
        }
        for snippet in &mut snippets {
            let Some(src) = sources.iter().find(|s| s.name == snippet.file) else {
                continue;
            };
            let file = snippet.file;
            for (_, span, kind, label) in marks.iter().filter(|m| m.0 == file) {
                snippet.add(&src.text, span.clone(), *kind, *label);
            }
            snippet.lines.sort_by_key(|l| l.number);
        }
        snippets
    }
}

/// The lines of one file that a diagnostic shows.
struct Snippet<'d> {
    file: &'d str,
    location: String,
    lines: Vec<ShownLine<'d>>,
}

impl<'d> Snippet<'d> {
    /// Marks the first line of `span` (a span running over several lines is marked to the
    /// end of its first).
    fn add(&mut self, text: &str, span: Range<usize>, kind: MarkKind, label: Option<&'d str>) {
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        let number = text[..line_start].matches('\n').count() + 1;
        // Tabs are shown as four spaces so the marks stay aligned.
        let shown = |s: &str| s.replace('\t', "    ");
        let mark = Mark {
            indent: shown(&text[line_start..start]).chars().count(),
            width: shown(&text[start..end]).chars().count().max(1),
            kind,
            label,
        };
        match self.lines.iter_mut().find(|l| l.number == number) {
            Some(l) => l.marks.push(mark),
            None => self.lines.push(ShownLine {
                number,
                code: shown(text[line_start..line_end].trim_end_matches('\r')),
                marks: vec![mark],
            }),
        }
    }
}

struct ShownLine<'d> {
    number: usize,
    code: String,
    marks: Vec<Mark<'d>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MarkKind {
    Primary,
    Secondary,
}

struct Mark<'d> {
    /// Columns before the mark (characters, tabs counted as four).
    indent: usize,
    width: usize,
    kind: MarkKind,
    label: Option<&'d str>,
}

impl ShownLine<'_> {
    /// The rows under the code line: one with every mark (`^` wins where marks overlap)
    /// and the rightmost mark's label; then, for each other labelled mark from the right,
    /// a row with a `|` down from it and a row with its label.
    fn mark_rows(&self, paint: &Paint) -> Vec<String> {
        let width = self
            .marks
            .iter()
            .map(|m| m.indent + m.width)
            .max()
            .unwrap_or(0);
        let mut cells: Vec<Option<MarkKind>> = vec![None; width];
        for kind in [MarkKind::Secondary, MarkKind::Primary] {
            for m in self.marks.iter().filter(|m| m.kind == kind) {
                cells[m.indent..m.indent + m.width].fill(Some(kind));
            }
        }
        let mut row = String::new();
        let mut i = 0;
        while i < cells.len() {
            let run = cells[i..].iter().take_while(|c| **c == cells[i]).count();
            row.push_str(&match cells[i] {
                None => " ".repeat(run),
                Some(kind) => paint.mark(kind).paint(&paint.mark_char(kind).repeat(run)),
            });
            i += run;
        }
        let mut by_end: Vec<&Mark> = self.marks.iter().collect();
        by_end.sort_by_key(|m| (m.indent + m.width, m.indent));
        let Some((rightmost, others)) = by_end.split_last() else {
            return vec![row];
        };
        if let Some(label) = rightmost.label {
            row.push(' ');
            row.push_str(&paint.mark(rightmost.kind).paint(label));
        }
        let mut rows = vec![row];
        let mut waiting: Vec<&Mark> = others
            .iter()
            .copied()
            .filter(|m| m.label.is_some())
            .collect();
        waiting.sort_by_key(|m| m.indent);
        while let Some(m) = waiting.pop() {
            let mut items: Vec<(usize, &str, Brush)> = waiting
                .iter()
                .map(|w| (w.indent, "|", paint.mark(w.kind)))
                .collect();
            items.push((m.indent, "|", paint.mark(m.kind)));
            rows.push(placed(&items));
            items.pop();
            items.push((m.indent, m.label.unwrap_or_default(), paint.mark(m.kind)));
            rows.push(placed(&items));
        }
        rows
    }
}

/// A row with each `(column, text, brush)` placed at its column, left to right.
fn placed(items: &[(usize, &str, Brush)]) -> String {
    let mut row = String::new();
    let mut col = 0;
    for (at, text, brush) in items {
        row.push_str(&" ".repeat(at.saturating_sub(col)));
        row.push_str(&brush.paint(text));
        col = col.max(*at) + text.chars().count();
    }
    row
}

/// The colours of one diagnostic, rustc's: the level and its `^` marks in bold red
/// (errors) or yellow (warnings), the gutter, `-` marks and their labels in bold blue.
struct Paint {
    level: Brush,
    emphasis: Brush,
    gutter: Brush,
}

/// One style, or none for plain text.
#[derive(Clone, Copy)]
struct Brush(Option<anstyle::Style>);

impl Brush {
    fn paint(self, text: &str) -> String {
        match self.0 {
            Some(style) if !text.is_empty() => format!("{style}{text}{style:#}"),
            _ => text.to_string(),
        }
    }
}

impl Paint {
    fn new(style: Style, severity: Severity) -> Paint {
        use anstyle::AnsiColor;
        let brush = |color: Option<AnsiColor>| {
            Brush((style == Style::Ansi).then(|| {
                anstyle::Style::new()
                    .bold()
                    .fg_color(color.map(anstyle::Color::Ansi))
            }))
        };
        Paint {
            level: brush(Some(match severity {
                Severity::Error => AnsiColor::BrightRed,
                Severity::Warning => AnsiColor::BrightYellow,
            })),
            emphasis: brush(None),
            gutter: brush(Some(AnsiColor::BrightBlue)),
        }
    }

    fn mark(&self, kind: MarkKind) -> Brush {
        match kind {
            MarkKind::Primary => self.level,
            MarkKind::Secondary => self.gutter,
        }
    }

    fn mark_char(&self, kind: MarkKind) -> &'static str {
        match kind {
            MarkKind::Primary => "^",
            MarkKind::Secondary => "-",
        }
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
        self.render_styled(Style::Plain)
    }

    /// [`Diagnostics::render`] in `style`.
    pub fn render_styled(&self, style: Style) -> String {
        render_all(&self.diagnostics, &self.sources, style)
    }
}

/// Renders diagnostics separated by blank lines.
pub fn render_all(diagnostics: &[Diagnostic], sources: &[Source], style: Style) -> String {
    diagnostics
        .iter()
        .map(|d| d.render_styled(sources, style))
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

    fn sources(files: &[(&str, &str)]) -> Vec<Source> {
        files
            .iter()
            .map(|(name, text)| Source {
                name: name.to_string(),
                text: text.to_string(),
            })
            .collect()
    }

    /// The span of the `nth` (0-based) occurrence of the word `word` in `sources[file]`.
    fn span_of(sources: &[Source], file: usize, word: &str, nth: usize) -> Span {
        let text = &sources[file].text;
        let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let start = text
            .match_indices(word)
            .map(|(i, _)| i)
            .filter(|&i| {
                !is_word(text[..i].chars().next_back())
                    && !is_word(text[i + word.len()..].chars().next())
            })
            .nth(nth)
            .expect("word present");
        Span {
            file,
            start,
            end: start + word.len(),
        }
    }

    /// "duplicate state `a`" at the second `a` of file 0, labelled at the first.
    fn duplicate_state_a(src: &[Source]) -> Diagnostic {
        Diagnostic::at(
            Severity::Error,
            src,
            span_of(src, 0, "a", 1),
            "duplicate state `a`",
        )
        .with_label(Label::at(
            src,
            span_of(src, 0, "a", 0),
            "first declared here",
        ))
    }

    #[test]
    fn a_label_on_an_earlier_line_is_drawn_with_dashes_above_the_primary_line() {
        let src = sources(&[(
            "p.pol",
            "policy p {\n  initial state a;\n  state b, a;\n}\n",
        )]);
        let d = duplicate_state_a(&src);
        assert_eq!(
            d.render(&src),
            "error: duplicate state `a`\n  --> p.pol:3:12\n   |\n 2 |   initial state a;\n   |                 - first declared here\n 3 |   state b, a;\n   |            ^\n"
        );
    }

    #[test]
    fn lines_left_out_between_marked_lines_are_shown_as_dots() {
        let src = sources(&[("p.pol", "state a;\n\n\nstate a;\n")]);
        let d = Diagnostic::at(Severity::Error, &src, span_of(&src, 0, "a", 1), "twice")
            .with_label(Label::at(&src, span_of(&src, 0, "a", 0), "here first"));
        assert_eq!(
            d.render(&src),
            "error: twice\n  --> p.pol:4:7\n   |\n 1 | state a;\n   |       - here first\n...\n 4 | state a;\n   |       ^\n"
        );
    }

    #[test]
    fn a_label_left_of_the_primary_mark_on_its_line_hangs_below_it() {
        let src = sources(&[("p.pol", "state a, a;\n")]);
        let d = duplicate_state_a(&src);
        assert_eq!(
            d.render(&src),
            "error: duplicate state `a`\n  --> p.pol:1:10\n   |\n 1 | state a, a;\n   |       -  ^\n   |       |\n   |       first declared here\n"
        );
    }

    #[test]
    fn a_label_in_another_file_gets_its_own_location_header() {
        let src = sources(&[
            ("main.pol", "include \"lib.pol\";\nevent e = env.f();\n"),
            ("lib.pol", "event e = env.g();\n"),
        ]);
        let d = Diagnostic::at(
            Severity::Error,
            &src,
            span_of(&src, 0, "e", 0),
            "duplicate event `e`",
        )
        .with_label(Label::at(
            &src,
            span_of(&src, 1, "e", 0),
            "first declared here",
        ));
        assert_eq!(
            d.render(&src),
            "error: duplicate event `e`\n  --> main.pol:2:7\n   |\n 2 | event e = env.f();\n   |       ^\n   |\n  ::: lib.pol:1:7\n   |\n 1 | event e = env.g();\n   |       - first declared here\n"
        );
    }

    #[test]
    fn the_gutter_is_as_wide_as_the_largest_line_number_shown() {
        let text = format!("state a;\n{}state a;\n", "\n".repeat(9));
        let src = sources(&[("p.pol", &text)]);
        let d = Diagnostic::at(Severity::Error, &src, span_of(&src, 0, "a", 1), "twice")
            .with_label(Label::at(&src, span_of(&src, 0, "a", 0), "here"));
        let out = d.render(&src);
        assert!(out.contains("\n  1 | state a;\n"), "{out}");
        assert!(out.contains("\n 11 | state a;\n"), "{out}");
        assert!(out.contains("\n   --> p.pol:11:7\n"), "{out}");
    }

    #[test]
    fn ansi_rendering_is_the_plain_rendering_with_colours_added() {
        let src = sources(&[(
            "p.pol",
            "policy p {\n  initial state a;\n  state a, b;\n}\n",
        )]);
        let d = Diagnostic::at(
            Severity::Warning,
            &src,
            span_of(&src, 0, "a", 1),
            "duplicate",
        )
        .with_label(Label::at(&src, span_of(&src, 0, "a", 0), "first"))
        .with_hint("rename it")
        .with_note("a note");
        let colored = d.render_styled(&src, Style::Ansi);
        assert!(
            colored.contains("\x1b["),
            "no escape sequences: {colored:?}"
        );
        let mut stripped = String::new();
        let mut chars = colored.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                chars.by_ref().find(|c| *c == 'm');
            } else {
                stripped.push(c);
            }
        }
        assert_eq!(stripped, d.render(&src));
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
