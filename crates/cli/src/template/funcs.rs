//! The functions a template may call: docker's (json, join, split, lower, upper,
//! title, truncate, pad, println) and Go's (index, len, not, and, or, eq, ne).
//!
//! Never: looks up fields or prints rows (exec.rs does).

use serde_json::Value;

use super::exec::{go_print, print, truthy, Val};

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

fn json(v: &Val) -> Value {
    match v {
        Val::NoValue => Value::Null,
        Val::Json(v) => v.clone(),
    }
}

fn string_arg(v: &Val) -> Result<String, String> {
    match v {
        Val::Json(Value::String(s)) => Ok(s.clone()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            print(other)
        )),
    }
}

/// docker's template functions (json, join, split, lower, upper, title, truncate, pad,
/// println) and Go's index, len, not, eq, ne, or, and.
pub(super) fn call(name: &str, args: &[Val]) -> Result<Val, String> {
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ))
        }
    };
    let s = |s: String| Ok(Val::Json(Value::String(s)));
    match name {
        "json" => {
            want(1)?;
            s(serde_json::to_string(&json(&args[0])).map_err(|e| e.to_string())?)
        }
        "join" => {
            want(2)?;
            let sep = string_arg(&args[1])?;
            match json(&args[0]) {
                Value::Array(a) => s(a.iter().map(go_print).collect::<Vec<_>>().join(&sep)),
                other => Err(format!("join wants a list, got {}", type_name(&other))),
            }
        }
        "split" => {
            want(2)?;
            let (text, sep) = (string_arg(&args[0])?, string_arg(&args[1])?);
            Ok(Val::Json(Value::Array(
                text.split(sep.as_str())
                    .map(|p| Value::String(p.into()))
                    .collect(),
            )))
        }
        "lower" | "upper" | "title" => {
            want(1)?;
            let t = print(&args[0]);
            s(match name {
                "lower" => t.to_lowercase(),
                "upper" => t.to_uppercase(),
                _ => title(&t),
            })
        }
        "truncate" => {
            want(2)?;
            let n = json(&args[1]).as_u64().ok_or("truncate wants a length")?;
            s(print(&args[0]).chars().take(n as usize).collect())
        }
        "pad" => {
            want(3)?;
            let l = json(&args[1]).as_u64().ok_or("pad wants counts")?.min(1024) as usize;
            let r = json(&args[2]).as_u64().ok_or("pad wants counts")?.min(1024) as usize;
            s(format!(
                "{}{}{}",
                " ".repeat(l),
                print(&args[0]),
                " ".repeat(r)
            ))
        }
        "println" => s(format!(
            "{}\n",
            args.iter().map(print).collect::<Vec<_>>().join(" ")
        )),
        "len" => {
            want(1)?;
            let n = match json(&args[0]) {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::String(t) => t.len(),
                other => return Err(format!("len of {}", type_name(&other))),
            };
            Ok(Val::Json(Value::from(n)))
        }
        "index" => {
            let (first, keys) = args.split_first().ok_or("index of nothing")?;
            let mut v = json(first);
            for k in keys {
                v = match (v, json(k)) {
                    (Value::Object(mut o), Value::String(k)) => {
                        // A missing key is the map's zero value: "" for docker's labels.
                        o.remove(&k).unwrap_or(Value::String(String::new()))
                    }
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_u64().filter(|i| (*i as usize) < a.len());
                        let i = i.ok_or_else(|| format!("index out of range: {n}"))?;
                        a[i as usize].clone()
                    }
                    (Value::Null, _) => Value::Null,
                    (v, k) => {
                        return Err(format!(
                            "can't index item of type {} with {}",
                            type_name(&v),
                            go_print(&k)
                        ))
                    }
                };
            }
            Ok(Val::Json(v))
        }
        "not" => {
            want(1)?;
            Ok(Val::Json(Value::Bool(!truthy(&args[0]))))
        }
        "and" | "or" => {
            let first = args.first().ok_or("and/or of nothing")?;
            let pick = args
                .iter()
                .find(|a| truthy(a) == (name == "or"))
                .or(args.last())
                .unwrap_or(first);
            Ok(pick.clone())
        }
        "eq" | "ne" => {
            want(2)?;
            let same = json(&args[0]) == json(&args[1]);
            Ok(Val::Json(Value::Bool(same == (name == "eq"))))
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// Capitalize each word, as docker's `title`.
fn title(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut start = true;
    for c in t.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}
