//! The metadata instructions (ENV LABEL EXPOSE VOLUME USER WORKDIR ENTRYPOINT CMD SHELL
//! STOPSIGNAL HEALTHCHECK ONBUILD MAINTAINER ARG): their effect on the image config and
//! the history text BuildKit writes for them (`created_by`, Go `%q`/`%v` formatting
//! included, e.g. `CMD ["sh" "-c" "x"]`, `EXPOSE map[80/tcp:{}]`). Inputs are already
//! expanded words; the engine does the expansion.
//!
//! Never: touches files (WORKDIR's directory is made by the engine), runs anything.
//!
//! Numbers in parentheses, e.g. (76), are items of docs/semantics.md.

use std::collections::BTreeMap;

use imago_dockerfile::{go_quote, CommandLine, KeyValue, PortSpec};

use crate::config::{Empty, Healthcheck, ImageConfig};

/// A metadata instruction could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetaError {
    /// The reason is imago_dockerfile's [`PortSpec::parse`] text.
    #[error("invalid port spec `{0}`: {1}")]
    Port(String, String),
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quote_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// Go's `%v` of a `[]string`: `[a b]`.
pub fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// Go's `time.Duration.String()` for a duration in nanoseconds.
pub fn go_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_frac(ns, 1_000_000));
    }
    let h = ns / 3_600_000_000_000;
    let rem = ns % 3_600_000_000_000;
    let m = rem / 60_000_000_000;
    let s_ns = rem % 60_000_000_000;
    let s = trim_frac(s_ns, 1_000_000_000);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

fn trim_frac(n: u64, unit: u64) -> String {
    let whole = n / unit;
    let frac = n % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.to_string().len() - 1;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Go's `%q` of an int (a quoted rune literal, as BuildKit's HEALTHCHECK history shows).
fn go_quote_rune(n: u32) -> String {
    match char::from_u32(n) {
        Some(c) if !c.is_control() && c != '\'' && c != '\\' => format!("'{c}'"),
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        _ if n < 0x80 => format!("'\\x{n:02x}'"),
        _ => format!("'\\u{n:04x}'"),
    }
}

/// ENV k=v…: set each (replacing in place), all values fixed before the instruction (25).
pub fn env(cfg: &mut ImageConfig, pairs: &[KeyValue]) -> String {
    let mut msg = String::from("ENV");
    for KeyValue { key, value, .. } in pairs {
        cfg.env_set(key, value);
        msg.push_str(&format!(" {key}={value}"));
    }
    msg
}

/// LABEL k=v…
pub fn label(cfg: &mut ImageConfig, pairs: &[KeyValue]) -> String {
    let mut msg = String::from("LABEL");
    let labels = cfg.config.labels.get_or_insert_with(BTreeMap::new);
    for KeyValue { key, value, .. } in pairs {
        labels.insert(key.clone(), value.clone());
        msg.push_str(&format!(" {key}={value}"));
    }
    msg
}

/// EXPOSE: add ports; history `EXPOSE map[80/tcp:{} 90/udp:{}]` (Go's `%v` of the set).
/// Each word is one expanded spec (docs/semantics.md items 110, 111).
pub fn expose(cfg: &mut ImageConfig, words: &[String]) -> Result<String, MetaError> {
    let mut ports = Vec::new();
    for w in words {
        let specs = PortSpec::parse(w).map_err(|why| MetaError::Port(w.clone(), why))?;
        ports.extend(specs.iter().map(PortSpec::to_string));
    }
    let map = cfg.config.exposed_ports.get_or_insert_with(BTreeMap::new);
    let mut set = BTreeMap::new();
    for p in ports {
        map.insert(p.clone(), Empty {});
        set.insert(p, ());
    }
    let items: Vec<String> = set.keys().map(|k| format!("{k}:{{}}")).collect();
    Ok(format!("EXPOSE map[{}]", items.join(" ")))
}

/// VOLUME: add mount points.
pub fn volume(cfg: &mut ImageConfig, paths: &[String]) -> String {
    let map = cfg.config.volumes.get_or_insert_with(BTreeMap::new);
    for p in paths {
        map.insert(p.clone(), Empty {});
    }
    format!("VOLUME {}", go_list(paths))
}

/// USER: the literal string (68).
pub fn user(cfg: &mut ImageConfig, user: &str) -> String {
    cfg.config.user = user.to_string();
    format!("USER {user}")
}

/// WORKDIR: resolve against the previous one (60); returns the new absolute dir and the
/// history text. The engine creates the dir (59, 61).
pub fn workdir(cfg: &mut ImageConfig, path: &str) -> (String, String) {
    let base = if cfg.config.working_dir.is_empty() {
        "/"
    } else {
        cfg.config.working_dir.as_str()
    };
    let wd = resolve_path(base, path);
    cfg.config.working_dir = wd.clone();
    let msg = format!("WORKDIR {wd}");
    (wd, msg)
}

/// `path.Join("/", base, p)` when `p` is relative, else clean(p).
pub fn resolve_path(base: &str, p: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{base}/{p}")
    };
    clean_path(&joined)
}

/// Go's `path.Clean` for absolute paths (`..` at the root stays at the root).
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The current shell prefix: SHELL, else `/bin/sh -c` (102, 103).
pub fn shell_of(cfg: &ImageConfig) -> Vec<String> {
    match &cfg.config.shell {
        Some(s) if !s.is_empty() => s.clone(),
        _ => vec!["/bin/sh".into(), "-c".into()],
    }
}

/// The argv of a command form under the stage's shell.
pub fn argv(cfg: &ImageConfig, form: &CommandLine) -> Vec<String> {
    match form {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut v = shell_of(cfg);
            v.push(s.clone());
            v
        }
    }
}

/// CMD: the last one counts (105).
pub fn cmd(cfg: &mut ImageConfig, form: &CommandLine) -> String {
    let v = argv(cfg, form);
    let msg = format!("CMD {}", go_quote_list(&v));
    cfg.config.cmd = Some(v);
    cfg.config.args_escaped = false;
    msg
}

/// ENTRYPOINT: also clears an inherited CMD (104).
pub fn entrypoint(cfg: &mut ImageConfig, form: &CommandLine, cmd_set_in_stage: bool) -> String {
    let v = argv(cfg, form);
    let msg = format!("ENTRYPOINT {}", go_quote_list(&v));
    cfg.config.entrypoint = Some(v);
    if !cmd_set_in_stage {
        cfg.config.cmd = None;
    }
    msg
}

/// SHELL ["exe", args…].
pub fn shell(cfg: &mut ImageConfig, argv: &[String]) -> String {
    cfg.config.shell = Some(argv.to_vec());
    format!("SHELL {}", go_list(argv))
}

/// STOPSIGNAL.
pub fn stopsignal(cfg: &mut ImageConfig, sig: &str) -> String {
    cfg.config.stop_signal = Some(sig.to_string());
    format!("STOPSIGNAL {sig}")
}

/// MAINTAINER: the image's `author`.
pub fn maintainer(cfg: &mut ImageConfig, who: &str) -> String {
    cfg.author = Some(who.to_string());
    format!("MAINTAINER {who}")
}

/// ONBUILD: store the trigger text (116).
pub fn onbuild(cfg: &mut ImageConfig, trigger: &str) -> String {
    cfg.config
        .on_build
        .get_or_insert_with(Vec::new)
        .push(trigger.to_string());
    format!("ONBUILD {trigger}")
}

/// ARG: history text `ARG a=b c` (value as written, or the key alone).
pub fn arg(args: &[(String, Option<String>)]) -> String {
    let items: Vec<String> = args
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    format!("ARG {}", items.join(" "))
}

/// HEALTHCHECK: shell form → `CMD-SHELL`, exec → `CMD`, NONE → `["NONE"]` (114). The
/// options were checked when the Dockerfile was parsed.
pub fn healthcheck(cfg: &mut ImageConfig, h: &imago_dockerfile::Healthcheck) -> String {
    let ns = |d: &Option<std::time::Duration>| {
        d.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    };
    let hc = match h {
        imago_dockerfile::Healthcheck::None => Healthcheck {
            test: h.test(),
            ..Default::default()
        },
        imago_dockerfile::Healthcheck::Check {
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
            ..
        } => Healthcheck {
            test: h.test(),
            interval: ns(interval),
            timeout: ns(timeout),
            start_period: ns(start_period),
            start_interval: ns(start_interval),
            retries: retries.unwrap_or(0),
        },
    };
    let msg = format!(
        "HEALTHCHECK &{{{} {} {} {} {} {}}}",
        go_quote_list(&hc.test),
        go_quote(&go_duration(hc.interval)),
        go_quote(&go_duration(hc.timeout)),
        go_quote(&go_duration(hc.start_period)),
        go_quote(&go_duration(hc.start_interval)),
        go_quote_rune(hc.retries)
    );
    cfg.config.healthcheck = Some(hc);
    msg
}

/// RUN history text: `RUN [|N K=V… ]argv… # buildkit` (the build args declared in the
/// stage, proxy args excluded, precede the command).
pub fn run_history(argv: &[String], used_args: &[(String, String)]) -> String {
    let cmd = argv.join(" ");
    if used_args.is_empty() {
        format!("RUN {cmd} # buildkit")
    } else {
        let kv: Vec<String> = used_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("RUN |{} {} {cmd} # buildkit", used_args.len(), kv.join(" "))
    }
}

/// COPY/ADD history text: `COPY src… dest # buildkit`.
pub fn copy_history(add: bool, sources: &[String], dest: &str) -> String {
    let mut msg = String::from(if add { "ADD" } else { "COPY" });
    for s in sources {
        msg.push(' ');
        msg.push_str(s);
    }
    msg.push(' ');
    msg.push_str(dest);
    msg.push_str(" # buildkit");
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: v.into(),
            legacy: false,
        }
    }

    #[test]
    fn j102_shell_form_wraps_in_sh_c() {
        let mut c = ImageConfig::scratch();
        entrypoint(&mut c, &CommandLine::Shell("foo bar".into()), false);
        assert_eq!(
            c.config.entrypoint.unwrap(),
            s(&["/bin/sh", "-c", "foo bar"])
        );
    }

    #[test]
    fn j103_shell_replaces_prefix() {
        let mut c = ImageConfig::scratch();
        let h = shell(&mut c, &s(&["ls"]));
        assert_eq!(h, "SHELL [ls]");
        entrypoint(&mut c, &CommandLine::Shell("my entrypoint".into()), false);
        assert_eq!(
            c.config.entrypoint.clone().unwrap(),
            s(&["ls", "my entrypoint"])
        );
        shell(&mut c, &s(&["/bin/sh", "-euxc"]));
        assert_eq!(
            argv(&c, &CommandLine::Shell("x".into())),
            s(&["/bin/sh", "-euxc", "x"])
        );
    }

    #[test]
    fn j104_entrypoint_clears_inherited_cmd() {
        let mut c = ImageConfig::scratch();
        c.config.cmd = Some(s(&["test"]));
        entrypoint(&mut c, &CommandLine::Exec(s(&["/bin/true"])), false);
        assert_eq!(c.config.cmd, None);
        // A CMD set earlier in the same stage stays.
        cmd(&mut c, &CommandLine::Exec(s(&["a"])));
        entrypoint(&mut c, &CommandLine::Exec(s(&["/bin/true"])), true);
        assert_eq!(c.config.cmd, Some(s(&["a"])));
    }

    #[test]
    fn j105_last_cmd_wins_and_history_text() {
        let mut c = ImageConfig::scratch();
        cmd(&mut c, &CommandLine::Exec(s(&["a"])));
        let h = cmd(&mut c, &CommandLine::Shell("echo \"hi\"".into()));
        assert_eq!(c.config.cmd, Some(s(&["/bin/sh", "-c", "echo \"hi\""])));
        assert_eq!(h, r#"CMD ["/bin/sh" "-c" "echo \"hi\""]"#);
    }

    #[test]
    fn k110_expose_expands_and_defaults_tcp() {
        let mut c = ImageConfig::scratch();
        let h = expose(&mut c, &s(&["3000", "4000/udp"])).unwrap();
        expose(&mut c, &s(&["5000"])).unwrap();
        let keys: Vec<&String> = c.config.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(keys, ["3000/tcp", "4000/udp", "5000/tcp"]);
        assert_eq!(h, "EXPOSE map[3000/tcp:{} 4000/udp:{}]");
    }

    #[test]
    fn k111_expose_ranges_and_host_specs() {
        let keys = |w: &[&str]| {
            let mut c = ImageConfig::scratch();
            expose(&mut c, &s(w)).map(|_| {
                let ports = c.config.exposed_ports.unwrap_or_default();
                ports.into_keys().collect::<Vec<_>>()
            })
        };
        assert_eq!(
            keys(&["1234-1236/tcp"]).unwrap(),
            s(&["1234/tcp", "1235/tcp", "1236/tcp"])
        );
        assert_eq!(keys(&["0.0.0.0:1234:1234/udp"]).unwrap(), s(&["1234/udp"]));
        assert_eq!(keys(&["[::1]:80:80"]).unwrap(), s(&["80/tcp"]));
        assert!(keys(&["myhost:80:80"]).is_err());
        assert!(keys(&[""]).is_err());
        assert!(keys(&["80/foo"]).is_err());
    }

    #[test]
    fn k112_labels_inherited_and_overridden() {
        let mut c = ImageConfig::scratch();
        label(&mut c, &[kv("a", "1"), kv("b", "2")]);
        let h = label(&mut c, &[kv("a", "x y")]);
        assert_eq!(h, "LABEL a=x y");
        let l = c.config.labels.unwrap();
        assert_eq!(l["a"], "x y");
        assert_eq!(l["b"], "2");
    }

    #[test]
    fn k113_stopsignal() {
        let mut c = ImageConfig::scratch();
        assert_eq!(stopsignal(&mut c, "SIGKILL"), "STOPSIGNAL SIGKILL");
        assert_eq!(c.config.stop_signal.as_deref(), Some("SIGKILL"));
    }

    #[test]
    fn k114_healthcheck_forms_and_history() {
        use imago_dockerfile::Healthcheck as H;
        let check = |command| H::Check {
            command,
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        };
        let mut c = ImageConfig::scratch();
        let mut h = check(CommandLine::Shell("x".into()));
        if let H::Check {
            interval, retries, ..
        } = &mut h
        {
            *interval = Some(std::time::Duration::from_secs(1));
            *retries = Some(3);
        }
        let t = healthcheck(&mut c, &h);
        let hc = c.config.healthcheck.clone().unwrap();
        assert_eq!(hc.test, s(&["CMD-SHELL", "x"]));
        assert_eq!(hc.interval, 1_000_000_000);
        assert_eq!(
            t,
            r#"HEALTHCHECK &{["CMD-SHELL" "x"] "1s" "0s" "0s" "0s" '\x03'}"#
        );
        healthcheck(&mut c, &check(CommandLine::Exec(s(&["a", "b"]))));
        assert_eq!(
            c.config.healthcheck.clone().unwrap().test,
            s(&["CMD", "a", "b"])
        );
        healthcheck(&mut c, &H::None);
        assert_eq!(c.config.healthcheck.clone().unwrap().test, s(&["NONE"]));
    }

    #[test]
    fn k115_volume() {
        let mut c = ImageConfig::scratch();
        assert_eq!(volume(&mut c, &s(&["/a", "/b"])), "VOLUME [/a /b]");
        assert_eq!(c.config.volumes.unwrap().len(), 2);
    }

    #[test]
    fn k116_onbuild_stored() {
        let mut c = ImageConfig::scratch();
        assert_eq!(onbuild(&mut c, "RUN echo hi"), "ONBUILD RUN echo hi");
        assert_eq!(c.config.on_build, Some(s(&["RUN echo hi"])));
    }

    #[test]
    fn f60_relative_workdir() {
        let mut c = ImageConfig::scratch();
        workdir(&mut c, "/test1");
        let (wd, h) = workdir(&mut c, "test2");
        assert_eq!(wd, "/test1/test2");
        assert_eq!(h, "WORKDIR /test1/test2");
        let (wd, _) = workdir(&mut c, "..");
        assert_eq!(wd, "/test1");
        assert_eq!(resolve_path("/", "../../x"), "/x");
    }

    #[test]
    fn f68_user_literal() {
        let mut c = ImageConfig::scratch();
        assert_eq!(user(&mut c, "nobody"), "USER nobody");
        assert_eq!(c.config.user, "nobody");
    }

    #[test]
    fn go_formatting() {
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(100_000_000), "100ms");
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }

    #[test]
    fn run_and_copy_history_texts() {
        assert_eq!(
            run_history(&s(&["/bin/sh", "-c", "echo hi"]), &[]),
            "RUN /bin/sh -c echo hi # buildkit"
        );
        assert_eq!(
            run_history(&s(&["/bin/sh", "-c", "x"]), &[("A".into(), "b".into())]),
            "RUN |1 A=b /bin/sh -c x # buildkit"
        );
        assert_eq!(
            copy_history(false, &s(&["a", "b"]), "/d/"),
            "COPY a b /d/ # buildkit"
        );
        assert_eq!(
            maintainer(&mut ImageConfig::scratch(), "me"),
            "MAINTAINER me"
        );
        assert_eq!(
            arg(&[("a".into(), Some("1".into())), ("b".into(), None)]),
            "ARG a=1 b"
        );
    }
}
