//! `--change` instructions of `iimage import` and `ictr commit`, like docker's `-c`:
//! CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME.
//! imago_dockerfile parses and expands each one as a Dockerfile line (quotes, escapes,
//! `$VAR` from the Env set so far, as docker does); this file only maps the result onto
//! the config's `config` object.

use imago_dockerfile::{CommandLine, InstructionKind, KeyValue, ShellLex};
use serde_json::{json, Map, Value};

/// A `--change` that is not one supported Dockerfile instruction.
#[derive(Debug, thiserror::Error)]
#[error("invalid --change `{change}`: {why}")]
pub struct ChangeError {
    change: String,
    why: String,
}

const SUPPORTED: &str =
    "supported: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME";

/// Apply one instruction to the config object `cfg`; errors name the instruction.
pub fn apply(cfg: &mut Map<String, Value>, change: &str) -> Result<(), ChangeError> {
    let bad = |why: String| ChangeError {
        change: change.trim().to_owned(),
        why,
    };
    let kind = parse(change, cfg).map_err(bad)?;
    if is_empty(&kind) {
        return Err(bad("needs a value".into()));
    }
    match kind {
        InstructionKind::Cmd(c) => set(cfg, "Cmd", Value::from(argv(c))),
        InstructionKind::Entrypoint(c) => set(cfg, "Entrypoint", Value::from(argv(c))),
        InstructionKind::Env(kvs) => {
            let env = cfg.entry("Env").or_insert_with(|| json!([]));
            let list = env
                .as_array_mut()
                .ok_or_else(|| bad("Env is not a list".into()))?;
            for KeyValue { key, value, .. } in kvs {
                list.retain(|e| {
                    e.as_str().and_then(|s| s.split_once('=')).map(|(k, _)| k) != Some(&key)
                });
                list.push(Value::from(format!("{key}={value}")));
            }
        }
        InstructionKind::Label(kvs) => {
            let labels =
                object(cfg, "Labels").ok_or_else(|| bad("Labels is not an object".into()))?;
            for KeyValue { key, value, .. } in kvs {
                labels.insert(key, Value::from(value));
            }
        }
        InstructionKind::Workdir(w) => set(cfg, "WorkingDir", Value::from(w)),
        InstructionKind::User(u) => set(cfg, "User", Value::from(u)),
        InstructionKind::StopSignal(s) => set(cfg, "StopSignal", Value::from(s)),
        InstructionKind::Expose(ports) => {
            let m = object(cfg, "ExposedPorts")
                .ok_or_else(|| bad("ExposedPorts is not an object".into()))?;
            for mut p in ports {
                if !p.contains('/') {
                    p.push_str("/tcp");
                }
                m.insert(p, json!({}));
            }
        }
        InstructionKind::Volume(vols) => {
            let m = object(cfg, "Volumes").ok_or_else(|| bad("Volumes is not an object".into()))?;
            for v in vols {
                m.insert(v, json!({}));
            }
        }
        _ => return Err(bad(SUPPORTED.into())),
    }
    Ok(())
}

/// The one instruction `change` holds, parsed and expanded with the Env of `cfg`.
fn parse(change: &str, cfg: &Map<String, Value>) -> Result<InstructionKind, String> {
    // The parser reads whole Dockerfiles: give the change a stage to belong to.
    let text = format!("FROM scratch\n{change}\n");
    let df = imago_dockerfile::parse(&text, "--change").map_err(|e| e.kind.to_string())?;
    let [stage] = df.stages.as_slice() else {
        return Err("one instruction per --change".into());
    };
    let [instruction] = stage.instructions.as_slice() else {
        return Err("one instruction per --change".into());
    };
    let env: Vec<(String, String)> = cfg
        .get("Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str()?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let expanded = instruction
        .expand(&ShellLex::new(df.escape), &env)
        .map_err(|e| e.to_string())?;
    Ok(expanded.kind)
}

/// The parser takes an instruction without arguments where docker's import refuses it
/// (`CMD` alone would run `/bin/sh -c ""`). An empty exec form (`CMD []`) clears.
fn is_empty(kind: &InstructionKind) -> bool {
    match kind {
        InstructionKind::Cmd(CommandLine::Shell(s))
        | InstructionKind::Entrypoint(CommandLine::Shell(s))
        | InstructionKind::Workdir(s)
        | InstructionKind::User(s)
        | InstructionKind::StopSignal(s) => s.trim().is_empty(),
        InstructionKind::Env(kvs) | InstructionKind::Label(kvs) => kvs.is_empty(),
        InstructionKind::Expose(v) | InstructionKind::Volume(v) => v.is_empty(),
        _ => false,
    }
}

/// Exec form as it is; shell form through `/bin/sh -c` (the default SHELL).
fn argv(c: CommandLine) -> Vec<String> {
    match c {
        CommandLine::Exec(v) => v,
        CommandLine::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s],
    }
}

fn set(cfg: &mut Map<String, Value>, key: &str, v: Value) {
    cfg.insert(key.into(), v);
}

/// The object at `key`, created when absent; None when it is something else.
fn object<'a>(cfg: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    cfg.entry(key).or_insert_with(|| json!({})).as_object_mut()
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
            "VOLUME /data",
            "STOPSIGNAL SIGTERM",
        ]);
        assert_eq!(c["Cmd"], json!(["/bin/sh"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Env"], json!(["B=two words", "A=3", "LEGACY=some value"]));
        assert_eq!(c["WorkingDir"], json!("/app"));
        assert_eq!(c["User"], json!("1000:1000"));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"a": "b"}));
        assert_eq!(c["Volumes"], json!({"/data": {}}));
        assert_eq!(c["StopSignal"], json!("SIGTERM"));
    }

    #[test]
    fn values_expand_from_the_env_set_so_far() {
        let c = cfg(&["ENV P=/usr/bin", "ENV PATH=$P:/x", "WORKDIR \"/my app\""]);
        assert_eq!(c["Env"], json!(["P=/usr/bin", "PATH=/usr/bin:/x"]));
        assert_eq!(c["WorkingDir"], json!("/my app"));
    }

    #[test]
    fn bad_changes_are_named() {
        let mut m = Map::new();
        let e = apply(&mut m, "RUN echo").unwrap_err().to_string();
        assert!(e.contains("invalid --change `RUN echo`"), "{e}");
        for empty in [
            "CMD",
            "ENTRYPOINT ",
            "ENV",
            "LABEL",
            "WORKDIR",
            "USER",
            "EXPOSE",
            "VOLUME",
        ] {
            assert!(apply(&mut m, empty).is_err(), "{empty}");
        }
        assert!(apply(&mut m, "ENV A=\"x").is_err());
        assert!(apply(&mut m, "FROM busybox").is_err());
        assert!(apply(&mut m, "USER a\nUSER b").is_err());
        assert!(apply(&mut m, "BOGUS x").is_err());
        assert!(m.is_empty(), "{m:?}");
    }
}
