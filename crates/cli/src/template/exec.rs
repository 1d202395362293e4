//! Running a parsed template over a `serde_json::Value`: field lookup, blocks, pipes,
//! Go's way of printing values, the `table` header pass.
//!
//! Never: parses (parse.rs), defines the functions (funcs.rs) or aligns columns (mod.rs).

use serde_json::Value;

use super::funcs::{call, type_name};
use super::parse::{Arg, Command, Node, Pipe, Pos};
use super::TemplateError;

/// Most bytes one row may render to.
pub const MAX_ROW_OUTPUT: usize = 1 << 20;

/// A value during execution: JSON, or Go's "no value" (a key a map lacks).
#[derive(Debug, Clone)]
pub(super) enum Val {
    Json(Value),
    NoValue,
}

/// What executes: the row, or the header pass (each field prints its column title).
pub enum Mode<'a> {
    Row,
    Header(&'a dyn Fn(&str) -> String),
}

struct Exec<'a> {
    mode: Mode<'a>,
    out: String,
}

/// Run `nodes` with `dot` as `.`.
pub fn run(nodes: &[Node], dot: &Value, mode: Mode<'_>) -> Result<String, TemplateError> {
    let mut e = Exec {
        mode,
        out: String::new(),
    };
    e.nodes(nodes, &Val::Json(dot.clone()), true)?;
    Ok(e.out)
}

fn exec_err(p: &Pipe, pos: Pos, what: impl std::fmt::Display) -> TemplateError {
    TemplateError::Exec(format!(
        "template: :{}:{}: executing \"\" at <{}>: {what}",
        pos.line, pos.col, p.text
    ))
}

fn pipe_pos(p: &Pipe) -> Pos {
    p.cmds
        .iter()
        .flat_map(|c| c.args.iter())
        .find_map(|a| match a {
            Arg::Field(_, pos) | Arg::Func(_, pos) => Some(*pos),
            _ => None,
        })
        .unwrap_or(Pos { line: 1, col: 0 })
}

/// Go's truth: false, 0, "", nil, empty lists and maps are false.
pub(super) fn truthy(v: &Val) -> bool {
    match v {
        Val::NoValue | Val::Json(Value::Null) => false,
        Val::Json(Value::Bool(b)) => *b,
        Val::Json(Value::Number(n)) => n.as_f64() != Some(0.0),
        Val::Json(Value::String(s)) => !s.is_empty(),
        Val::Json(Value::Array(a)) => !a.is_empty(),
        Val::Json(Value::Object(o)) => !o.is_empty(),
    }
}

/// Go's `%v` of a decoded JSON value: `[a b]`, `map[k:v]`, `<nil>`.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let mut kv: Vec<(&String, &Value)> = o.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            let items: Vec<String> = kv
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_print(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

pub(super) fn print(v: &Val) -> String {
    match v {
        Val::NoValue => "<no value>".into(),
        Val::Json(v) => go_print(v),
    }
}

/// An object reads as a struct (a missing field is an error, as in docker) when it is
/// the row itself or every key starts with a capital; otherwise as a map (missing key:
/// `<no value>`), like Labels, ExposedPorts, Volumes.
fn struct_like(o: &serde_json::Map<String, Value>, root: bool) -> bool {
    root || (!o.is_empty()
        && o.keys()
            .all(|k| k.starts_with(|c: char| c.is_ascii_uppercase())))
}

impl Exec<'_> {
    fn emit(&mut self, s: &str) -> Result<(), TemplateError> {
        if self.out.len() + s.len() > MAX_ROW_OUTPUT {
            return Err(TemplateError::TooLong(MAX_ROW_OUTPUT));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn header(&self) -> bool {
        matches!(self.mode, Mode::Header(_))
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Val, root: bool) -> Result<(), TemplateError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.emit(t)?,
                Node::Action(p) => {
                    let s = match &self.mode {
                        Mode::Header(title) => title(first_field(p).unwrap_or_default()),
                        Mode::Row => print(&self.pipe(p, dot, root)?),
                    };
                    self.emit(&s)?;
                }
                // The header pass shows each block's body once, with its titles.
                Node::If(_, then, _) | Node::With(_, then, _) | Node::Range(_, then, _)
                    if self.header() =>
                {
                    self.nodes(then, dot, root)?
                }
                Node::If(p, then, els) => {
                    let v = self.pipe(p, dot, root)?;
                    self.nodes(if truthy(&v) { then } else { els }, dot, root)?;
                }
                Node::With(p, then, els) => {
                    let v = self.pipe(p, dot, root)?;
                    if truthy(&v) {
                        self.nodes(then, &v, false)?;
                    } else {
                        self.nodes(els, dot, root)?;
                    }
                }
                Node::Range(p, body, els) => {
                    let v = self.pipe(p, dot, root)?;
                    let items: Vec<Value> = match v {
                        Val::NoValue | Val::Json(Value::Null) => vec![],
                        Val::Json(Value::Array(a)) => a,
                        Val::Json(Value::Object(o)) => {
                            let mut kv: Vec<(String, Value)> = o.into_iter().collect();
                            kv.sort_by(|a, b| a.0.cmp(&b.0));
                            kv.into_iter().map(|(_, v)| v).collect()
                        }
                        Val::Json(other) => {
                            return Err(exec_err(
                                p,
                                pipe_pos(p),
                                format!("range can't iterate over {}", go_print(&other)),
                            ))
                        }
                    };
                    if items.is_empty() {
                        self.nodes(els, dot, root)?;
                    }
                    for item in items {
                        self.nodes(body, &Val::Json(item), false)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn pipe(&mut self, p: &Pipe, dot: &Val, root: bool) -> Result<Val, TemplateError> {
        let mut prev: Option<Val> = None;
        for c in &p.cmds {
            prev = Some(self.command(p, c, dot, root, prev)?);
        }
        Ok(prev.unwrap_or(Val::NoValue))
    }

    fn command(
        &mut self,
        p: &Pipe,
        c: &Command,
        dot: &Val,
        root: bool,
        prev: Option<Val>,
    ) -> Result<Val, TemplateError> {
        let (first, rest) = c.args.split_first().expect("parser makes no empty command");
        let Arg::Func(name, pos) = first else {
            if !rest.is_empty() || prev.is_some() {
                return Err(exec_err(
                    p,
                    pipe_pos(p),
                    "can't give argument to non-function",
                ));
            }
            return self.operand(p, first, dot, root);
        };
        let mut args = vec![];
        for a in rest {
            args.push(self.operand(p, a, dot, root)?);
        }
        args.extend(prev);
        call(name, &args).map_err(|why| exec_err(p, *pos, format!("error calling {name}: {why}")))
    }

    fn operand(&mut self, p: &Pipe, a: &Arg, dot: &Val, root: bool) -> Result<Val, TemplateError> {
        match a {
            Arg::Str(s) => Ok(Val::Json(Value::String(s.clone()))),
            Arg::Int(n) => Ok(Val::Json(Value::from(*n))),
            Arg::Func(name, pos) => match name.as_str() {
                "true" => Ok(Val::Json(Value::Bool(true))),
                "false" => Ok(Val::Json(Value::Bool(false))),
                "nil" => Ok(Val::Json(Value::Null)),
                _ => call(name, &[])
                    .map_err(|why| exec_err(p, *pos, format!("error calling {name}: {why}"))),
            },
            Arg::Field(names, pos) => {
                let mut v = dot.clone();
                let mut at_root = root;
                for n in names {
                    v = match v {
                        Val::Json(Value::Object(mut o)) => match o.remove(n) {
                            Some(x) => Val::Json(x),
                            None if struct_like(&o, at_root) => {
                                let mut known: Vec<&String> = o.keys().collect();
                                known.sort();
                                let known: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
                                return Err(exec_err(
                                    p,
                                    *pos,
                                    format!(
                                        "can't evaluate field {n} (fields: {})",
                                        known.join(", ")
                                    ),
                                ));
                            }
                            None => Val::NoValue,
                        },
                        Val::NoValue | Val::Json(Value::Null) => {
                            return Err(exec_err(p, *pos, format!("nil pointer evaluating .{n}")))
                        }
                        Val::Json(other) => {
                            return Err(exec_err(
                                p,
                                *pos,
                                format!("can't evaluate field {n} in type {}", type_name(&other)),
                            ))
                        }
                    };
                    at_root = false;
                }
                Ok(v)
            }
        }
    }
}

/// The first field an action names: the column its header shows.
fn first_field(p: &Pipe) -> Option<&str> {
    p.cmds
        .iter()
        .flat_map(|c| c.args.iter())
        .find_map(|a| match a {
            Arg::Field(n, _) => n.first().map(String::as_str),
            _ => None,
        })
}
