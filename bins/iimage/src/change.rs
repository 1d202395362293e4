//! `--change` instructions of `iimage import`, like `docker import -c`: CMD, ENTRYPOINT,
//! ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME, applied to the image config
//! (`config` object) as JSON.

use serde_json::{json, Map, Value};

/// Apply one instruction to the config object `cfg`; errors name the instruction.
pub fn apply(cfg: &mut Map<String, Value>, change: &str) -> Result<(), String> {
    let change = change.trim();
    let (word, rest) = match change.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (change, ""),
    };
    let bad = |why: &str| format!("invalid --change `{change}`: {why}");
    match word.to_ascii_uppercase().as_str() {
        "CMD" | "ENTRYPOINT" => {
            let v = exec_or_shell(rest).map_err(|e| bad(&e))?;
            let key = if word.eq_ignore_ascii_case("CMD") {
                "Cmd"
            } else {
                "Entrypoint"
            };
            cfg.insert(key.into(), Value::from(v));
        }
        "ENV" => {
            let pairs = key_values(rest).map_err(|e| bad(&e))?;
            let env = cfg.entry("Env").or_insert_with(|| json!([]));
            let list = env.as_array_mut().ok_or_else(|| bad("Env is not a list"))?;
            for (k, v) in pairs {
                list.retain(|e| {
                    e.as_str().and_then(|s| s.split_once('=')).map(|(ek, _)| ek) != Some(k.as_str())
                });
                list.push(Value::from(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let pairs = key_values(rest).map_err(|e| bad(&e))?;
            let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
            let m = labels
                .as_object_mut()
                .ok_or_else(|| bad("Labels is not an object"))?;
            for (k, v) in pairs {
                m.insert(k, Value::from(v));
            }
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" => {
            if rest.is_empty() {
                return Err(bad("needs a value"));
            }
            let key = match word.to_ascii_uppercase().as_str() {
                "WORKDIR" => "WorkingDir",
                "USER" => "User",
                _ => "StopSignal",
            };
            cfg.insert(key.into(), Value::from(unquote(rest)));
        }
        "EXPOSE" | "VOLUME" => {
            let key = if word.eq_ignore_ascii_case("EXPOSE") {
                "ExposedPorts"
            } else {
                "Volumes"
            };
            let items: Vec<String> = if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|e| bad(&e.to_string()))?
            } else {
                rest.split_whitespace().map(str::to_owned).collect()
            };
            if items.is_empty() {
                return Err(bad("needs a value"));
            }
            let m = cfg.entry(key).or_insert_with(|| json!({}));
            let m = m.as_object_mut().ok_or_else(|| bad("not an object"))?;
            for mut i in items {
                if key == "ExposedPorts" && !i.contains('/') {
                    i.push_str("/tcp");
                }
                m.insert(i, json!({}));
            }
        }
        _ => {
            return Err(bad(
                "supported: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME",
            ))
        }
    }
    Ok(())
}

/// `["a","b"]` (exec form) or `a b` (shell form → `/bin/sh -c "a b"`).
fn exec_or_shell(rest: &str) -> Result<Vec<String>, String> {
    if rest.is_empty() {
        return Err("needs a command".into());
    }
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(v);
        }
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')))
    {
        s[1..s.len() - 1].to_owned()
    } else {
        s.to_owned()
    }
}

/// `k=v k2="v 2"` or the legacy `k v with spaces`.
fn key_values(rest: &str) -> Result<Vec<(String, String)>, String> {
    if rest.is_empty() {
        return Err("needs KEY=VALUE".into());
    }
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or("needs KEY=VALUE or KEY VALUE")?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    let mut out = vec![];
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            chars.next();
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => word.push(c),
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c == '\\' => {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
                None if c.is_whitespace() => break,
                None => word.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| format!("`{word}` is not KEY=VALUE"))?;
        if k.is_empty() {
            return Err(format!("`{word}` has an empty key"));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(changes: &[&str]) -> Value {
        let mut m = Map::new();
        for c in changes {
            apply(&mut m, c).unwrap();
        }
        Value::Object(m)
    }

    #[test]
    fn docker_import_changes() {
        let c = cfg(&[
            r#"CMD ["/bin/sh"]"#,
            "ENTRYPOINT echo hi",
            "ENV A=1 B=\"two words\"",
            "ENV A=3",
            "ENV LEGACY some value",
            "WORKDIR /app",
            "USER 1000:1000",
            "EXPOSE 80 53/udp",
            "LABEL a=b",
        ]);
        assert_eq!(c["Cmd"], json!(["/bin/sh"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Env"], json!(["B=two words", "A=3", "LEGACY=some value"]));
        assert_eq!(c["WorkingDir"], json!("/app"));
        assert_eq!(c["User"], json!("1000:1000"));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"a": "b"}));
    }

    #[test]
    fn bad_changes_are_named() {
        let mut m = Map::new();
        let e = apply(&mut m, "RUN echo").unwrap_err();
        assert!(e.contains("RUN echo"), "{e}");
        assert!(apply(&mut m, "CMD").is_err());
        assert!(apply(&mut m, "ENV A=\"x").is_err());
    }
}
