//! docker's `--format`: `table` (the program's own table), `json` (one object per
//! line), or a Go text/template over each row's JSON, with docker's `table` prefix
//! (a header row, columns aligned like Go's tabwriter) and its `\t`/`\n` escapes.
//!
//! The subset: literal text, `{{.}}`, `{{.A.B}}`, pipes `|`, `if`/`with`/`range`/
//! `else`/`end`, trim markers `{{-`/`-}}`, comments `{{/* */}}`, string/integer
//! literals, and the functions docker adds (json, join, split, lower, upper, title,
//! truncate, pad, println) with Go's index, len, not, and, or, eq, ne. No variables,
//! no `define`/`template`, no printf. A field a row lacks is an error, as docker's
//! typed contexts make it; a key a map (labels, ports) lacks prints `<no value>`.
//!
//! Written here rather than taken from crates.io: gtmpl (the one Go template crate
//! in use) had its last release in 2021, evaluates over its own value type rather
//! than serde_json, lacks docker's functions (json, join, table) and has no bound on
//! output; this subset is what docker users type, over serde_json, bounded.
//!
//! Bounds: a template of at most [`MAX_TEMPLATE`] bytes, nesting at most 32 blocks,
//! at most [`exec::MAX_ROW_OUTPUT`] bytes rendered per row.
//!
//! Never: reads the store or prints (callers print what [`Format`] renders).

mod exec;
mod funcs;
mod parse;
#[cfg(test)]
mod tests;

use serde_json::Value;

pub use exec::{go_print, MAX_ROW_OUTPUT};

/// Longest template accepted, bytes.
pub const MAX_TEMPLATE: usize = 4096;

/// A bad template, or one that failed on a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse (Go's `template: :LINE: ...` text).
    #[error("{0}")]
    Parse(String),
    /// Executing it on a row failed (Go's `template: :L:C: executing ...` text).
    #[error("{0}")]
    Exec(String),
    /// The template is longer than [`MAX_TEMPLATE`].
    #[error("template: longer than {0} bytes")]
    TooBig(usize),
    /// One row rendered to more than [`MAX_ROW_OUTPUT`] bytes.
    #[error("template: a row renders to more than {0} bytes")]
    TooLong(usize),
}

/// What `--format` asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// The program's own table.
    Table,
    /// One JSON object per line (`{{json .}}`).
    Json,
    /// A template, with a header row when it began with `table`.
    Template(Template),
}

impl Format {
    /// Read a `--format` value: `table`, `json`, `table TEMPLATE` or `TEMPLATE`.
    pub fn parse(s: &str) -> Result<Format, TemplateError> {
        match s.trim() {
            "" | "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            _ => Ok(Format::Template(Template::parse(s)?)),
        }
    }

    /// Render the rows: `table` is the caller's (None), the others are the text to print.
    pub fn render(
        &self,
        rows: &[Value],
        title: &dyn Fn(&str) -> String,
    ) -> Result<Option<String>, TemplateError> {
        match self {
            Format::Table => Ok(None),
            Format::Json => Ok(Some(
                rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
            )),
            Format::Template(t) => t.render_rows(rows, title).map(Some),
        }
    }
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    table: bool,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parse, as docker reads `--format`: a leading `table` asks for a header and
    /// aligned columns; spaces around are trimmed; `\t` and `\n` written as two
    /// characters become a tab and a newline.
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        if s.len() > MAX_TEMPLATE {
            return Err(TemplateError::TooBig(MAX_TEMPLATE));
        }
        let (table, body) = match s.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        Ok(Template {
            table,
            nodes: parse::parse(&body)?,
        })
    }

    /// Render one value (no newline added).
    pub fn render(&self, row: &Value) -> Result<String, TemplateError> {
        exec::run(&self.nodes, row, exec::Mode::Row)
    }

    /// Each value followed by a newline (inspect's `--format`: no header, no alignment).
    pub fn render_each(&self, values: &[Value]) -> Result<String, TemplateError> {
        let mut out = String::new();
        for v in values {
            out.push_str(&self.render(v)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// Every row followed by a newline; with `table`, a header first (each field's
    /// `title`) and the columns aligned.
    pub fn render_rows(
        &self,
        rows: &[Value],
        title: &dyn Fn(&str) -> String,
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        if self.table {
            out.push_str(&exec::run(
                &self.nodes,
                &Value::Null,
                exec::Mode::Header(title),
            )?);
            out.push('\n');
        }
        for r in rows {
            out.push_str(&self.render(r)?);
            out.push('\n');
        }
        Ok(if self.table { align(&out) } else { out })
    }
}

/// Go's tabwriter as docker sets it up (minwidth 10, padding 3, spaces): every
/// tab-ended cell is padded to its column's width; a line's last cell is not.
pub fn align(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = vec![];
    for cells in &lines {
        for (i, c) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let w = (c.chars().count() + 3).max(10);
            match widths.get_mut(i) {
                Some(x) => *x = (*x).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    for (n, cells) in lines.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let last = cells.len() - 1;
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i < last {
                let pad = widths[i].saturating_sub(c.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
    }
    out
}

/// docker's header for a field: the title callers know, else the name in capitals.
pub fn default_title(titles: &[(&str, &str)], field: &str) -> String {
    titles
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, t)| (*t).to_owned())
        .unwrap_or_else(|| field.to_uppercase())
}
