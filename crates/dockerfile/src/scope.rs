//! ARG/ENV scoping, BuildKit's rules: the global scope (predefined platform args + ARGs
//! before the first FROM, usable only in FROM lines), per-stage scopes (an ARG is visible
//! after its declaration; a global is redeclared with `ARG name`; `--build-arg` beats
//! defaults; ENV beats ARG), and the environment a RUN sees (ENV + ARGs with values +
//! proxy build args).
//! Never: reads the process environment or image configs (the engine passes them in).

use crate::expand::{ExpandError, Lookup, ShellLex, MAX_EXPANDED_LEN};
use crate::model::{ArgDecl, Dockerfile, InstructionKind, Stage};
use std::collections::{BTreeMap, HashMap};

/// The most bytes one variable's value may hold: what one expansion may produce.
pub const MAX_VALUE_LEN: usize = MAX_EXPANDED_LEN;

/// The most bytes all of a scope's variables (names and values, ENV and ARG) may hold
/// together: 2 MiB, the environment `execve` accepts with Linux's default 8 MiB stack,
/// so a RUN could not use more anyway; it keeps a Dockerfile from holding thousands of
/// 1 MiB variables.
pub const MAX_SCOPE_TOTAL: usize = 2 << 20;

/// A variable could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// Expanding an ARG name or default before the first FROM failed (`line`: its line).
    #[error("line {line}: {source}")]
    Expand {
        line: u32,
        #[source]
        source: ExpandError,
    },
    #[error("the value of `{name}` is {len} bytes, more than imago's limit of {MAX_VALUE_LEN}")]
    ValueTooLong { name: String, len: usize },
    #[error(
        "setting `{name}` takes the variables (ENV and ARG) over imago's limit of \
         {MAX_SCOPE_TOTAL} bytes in total"
    )]
    TooMany { name: String },
    /// A global ARG failed the limits above (`line`: its line).
    #[error("line {line}: {source}")]
    Global {
        line: u32,
        #[source]
        source: Box<ScopeError>,
    },
}

fn check_value(name: &str, value: Option<&str>) -> Result<(), ScopeError> {
    match value {
        Some(v) if v.len() > MAX_VALUE_LEN => Err(ScopeError::ValueTooLong {
            name: name.to_string(),
            len: v.len(),
        }),
        _ => Ok(()),
    }
}

fn var_size(name: &str, value: Option<&str>) -> usize {
    name.len() + value.map_or(0, str::len)
}

/// `--build-arg name=value` pairs.
pub type BuildArgs = BTreeMap<String, String>;

/// The proxy variables: build args that reach RUN without an ARG declaration and stay
/// out of the image history and cache key; a build also takes them from the host's
/// environment by default (podman's rule).
pub const HOST_PROXY_VARS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The build args treated as [`HOST_PROXY_VARS`] are, though never taken from the host
/// (they name host paths): BuildKit passes these two through too.
pub const PROXY_ARGS_TLS: [&str; 2] = ["SSL_CERT_FILE", "SSL_CERT_DIR"];

/// True for the names in [`HOST_PROXY_VARS`] and [`PROXY_ARGS_TLS`].
pub fn is_proxy_arg(name: &str) -> bool {
    HOST_PROXY_VARS.contains(&name) || PROXY_ARGS_TLS.contains(&name)
}

/// An OCI platform: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut it = s.split('/');
        let os = it.next().filter(|x| !x.is_empty())?.to_string();
        let arch = it.next().filter(|x| !x.is_empty())?.to_string();
        let variant = it.next().map(str::to_string);
        if it.next().is_some() {
            return None;
        }
        Some(Platform { os, arch, variant })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The automatic args: TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM
/// BUILDOS BUILDARCH BUILDVARIANT, and TARGETSTAGE when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predefined {
    pub target: Platform,
    pub build: Platform,
    /// The name of the stage being built (`--target`, or the last stage's name, or
    /// `default`).
    pub target_stage: Option<String>,
}

impl Predefined {
    /// Build and target both `host`, the machine's platform (the caller knows it, from
    /// `imago_oci::platform`; this crate depends on nothing of imago's).
    pub fn for_host(host: Platform) -> Predefined {
        Predefined {
            target: host.clone(),
            build: host,
            target_stage: None,
        }
    }

    /// The `(name, value)` pairs, in BuildKit's order.
    pub fn args(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        for (prefix, p) in [("TARGET", &self.target), ("BUILD", &self.build)] {
            v.push((format!("{prefix}PLATFORM"), p.to_string()));
            v.push((format!("{prefix}OS"), p.os.clone()));
            v.push((format!("{prefix}ARCH"), p.arch.clone()));
            v.push((
                format!("{prefix}VARIANT"),
                p.variant.clone().unwrap_or_default(),
            ));
        }
        if let Some(s) = &self.target_stage {
            v.push(("TARGETSTAGE".into(), s.clone()));
        }
        v
    }

    /// The TARGETSTAGE value BuildKit uses: the target's name, else the last stage's
    /// name, else `default`.
    pub fn target_stage_name(df: &Dockerfile, target: Option<&str>) -> String {
        let stage = match target {
            Some(t) => df.stage(t),
            None => df.stages.last(),
        };
        stage
            .and_then(|s| s.name.clone())
            .unwrap_or_else(|| "default".to_string())
    }
}

/// The global scope: values visible in FROM lines (and as defaults of `ARG name` in a
/// stage).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GlobalScope {
    /// Declared names with their value (None: declared without value or build-arg).
    vars: Vec<(String, Option<String>)>,
}

impl GlobalScope {
    /// Evaluates the predefined args and the ARGs before the first FROM, in order:
    /// each default is expanded with what is defined above it; a `--build-arg` replaces
    /// the default.
    /// Fails with [`ScopeError::Expand`] or [`ScopeError::Global`] naming the ARG's line.
    pub fn new(
        df: &Dockerfile,
        build_args: &BuildArgs,
        predefined: &Predefined,
    ) -> Result<GlobalScope, ScopeError> {
        let lex = ShellLex::new(df.escape);
        let mut scope = GlobalScope {
            vars: predefined
                .args()
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect(),
        };
        for meta in &df.meta_args {
            let line = meta.span.start_line;
            let expand_err = |source| ScopeError::Expand { line, source };
            for decl in &meta.args {
                let name = lex.expand_word(&decl.name, &scope).map_err(expand_err)?;
                // As BuildKit: a --build-arg replaces the default, which is then not even
                // expanded (so `ARG FOO=${FOO:?required}` works as "required build arg").
                let value = match build_args.get(&name) {
                    Some(v) => Some(v.clone()),
                    None => decl
                        .default
                        .as_deref()
                        .map(|d| lex.expand_word(d, &scope))
                        .transpose()
                        .map_err(expand_err)?,
                };
                scope.set(name, value).map_err(|e| ScopeError::Global {
                    line,
                    source: Box::new(e),
                })?;
            }
        }
        Ok(scope)
    }

    fn set(&mut self, name: String, value: Option<String>) -> Result<(), ScopeError> {
        check_value(&name, value.as_deref())?;
        let old = self
            .vars
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(0, |(k, v)| var_size(k, v.as_deref()));
        let total: usize = self
            .vars
            .iter()
            .map(|(k, v)| var_size(k, v.as_deref()))
            .sum();
        if total - old + var_size(&name, value.as_deref()) > MAX_SCOPE_TOTAL {
            return Err(ScopeError::TooMany { name });
        }
        match self.vars.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
        Ok(())
    }

    /// The value of a global, None if undeclared or declared without a value.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// The stage's base and `--platform` with globals expanded (`FROM busybox:${tag}`).
    pub fn expand_from(
        &self,
        stage: &Stage,
        escape: char,
    ) -> Result<(String, Option<String>), ExpandError> {
        let lex = ShellLex::new(escape);
        let base = lex.expand_word(&stage.base, self)?;
        let platform = stage
            .platform
            .as_deref()
            .map(|p| lex.expand_word(p, self))
            .transpose()?;
        Ok((base, platform))
    }
}

impl Lookup for GlobalScope {
    fn lookup(&self, name: &str) -> Option<String> {
        self.value(name).map(str::to_string)
    }
}

/// The variables of one stage while it is built, in declaration order.
/// Clone it for a stage `FROM` this one (ARGs and ENV are inherited).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StageScope {
    args: Vec<(String, Option<String>)>,
    env: Vec<(String, String)>,
    // positions in `args` / `env` by name, so lookups stay O(1) in huge files
    arg_index: HashMap<String, usize>,
    env_index: HashMap<String, usize>,
    /// Bytes held by names and values of `args` and `env` (see [`MAX_SCOPE_TOTAL`]).
    total: usize,
}

impl StageScope {
    /// An empty scope (a stage FROM `scratch`).
    pub fn new() -> StageScope {
        StageScope::default()
    }

    /// A scope starting with an image's config `Env` (`KEY=value` strings). The image's
    /// variables are taken as they are, whatever their size (they are not the
    /// Dockerfile's doing), and count towards [`MAX_SCOPE_TOTAL`].
    pub fn with_image_env<'a>(env: impl IntoIterator<Item = &'a str>) -> StageScope {
        let mut s = StageScope::new();
        for e in env {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            s.put_env(k, v);
        }
        s
    }

    /// Fails when the change would take the scope over the limits.
    fn check_change(&self, name: &str, old: usize, value: Option<&str>) -> Result<(), ScopeError> {
        check_value(name, value)?;
        if self.total - old + var_size(name, value) > MAX_SCOPE_TOTAL {
            return Err(ScopeError::TooMany {
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Declares an (already expanded) ARG: the value is the `--build-arg` if given, else
    /// the default, else the global of that name (predefined args included), else unset.
    /// Fails (and changes nothing) beyond [`MAX_VALUE_LEN`] or [`MAX_SCOPE_TOTAL`].
    pub fn declare_arg(
        &mut self,
        decl: &ArgDecl,
        global: &GlobalScope,
        build_args: &BuildArgs,
    ) -> Result<(), ScopeError> {
        let value = build_args
            .get(&decl.name)
            .cloned()
            .or_else(|| decl.default.clone())
            .or_else(|| global.value(&decl.name).map(str::to_string));
        let slot = self.arg_index.get(&decl.name).copied();
        let old = slot.map_or(0, |i| var_size(&self.args[i].0, self.args[i].1.as_deref()));
        self.check_change(&decl.name, old, value.as_deref())?;
        self.total = self.total - old + var_size(&decl.name, value.as_deref());
        match slot {
            Some(i) => self.args[i].1 = value,
            None => {
                self.arg_index.insert(decl.name.clone(), self.args.len());
                self.args.push((decl.name.clone(), value));
            }
        }
        Ok(())
    }

    /// Sets an ENV variable; setting it again keeps its position. Fails (and changes
    /// nothing) beyond [`MAX_VALUE_LEN`] or [`MAX_SCOPE_TOTAL`].
    pub fn set_env(&mut self, key: &str, value: &str) -> Result<(), ScopeError> {
        let old = self
            .env_index
            .get(key)
            .map_or(0, |&i| var_size(&self.env[i].0, Some(&self.env[i].1)));
        self.check_change(key, old, Some(value))?;
        self.put_env(key, value);
        Ok(())
    }

    fn put_env(&mut self, key: &str, value: &str) {
        match self.env_index.get(key) {
            Some(&i) => {
                self.total -= var_size(key, Some(&self.env[i].1));
                self.env[i].1 = value.to_string();
            }
            None => {
                self.env_index.insert(key.to_string(), self.env.len());
                self.env.push((key.to_string(), value.to_string()));
            }
        }
        self.total += var_size(key, Some(value));
    }

    /// Applies an **expanded** ENV or ARG instruction (others are ignored). On an error
    /// the variables before the failing one are set.
    pub fn apply(
        &mut self,
        kind: &InstructionKind,
        global: &GlobalScope,
        build_args: &BuildArgs,
    ) -> Result<(), ScopeError> {
        match kind {
            InstructionKind::Env(kvs) => {
                for kv in kvs {
                    self.set_env(&kv.key, &kv.value)?;
                }
            }
            InstructionKind::Arg(decls) => {
                for d in decls {
                    self.declare_arg(d, global, build_args)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The ENV variables (what goes into the image config `Env`).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The declared ARGs with their values (None: declared, unset).
    pub fn args(&self) -> &[(String, Option<String>)] {
        &self.args
    }

    /// The environment of a RUN: ENV, then ARGs that have a value and no ENV of the same
    /// name, then proxy build args not declared otherwise.
    pub fn run_env(&self, build_args: &BuildArgs) -> Vec<(String, String)> {
        let mut out = self.env.clone();
        for (k, v) in &self.args {
            if let Some(v) = v {
                if !self.env_index.contains_key(k) {
                    out.push((k.clone(), v.clone()));
                }
            }
        }
        for (k, v) in build_args {
            if is_proxy_arg(k) && !self.env_index.contains_key(k) && !self.arg_index.contains_key(k)
            {
                out.push((k.clone(), v.clone()));
            }
        }
        out
    }
}

/// Expansion looks up ENV first, then ARGs with a value.
impl Lookup for StageScope {
    fn lookup(&self, name: &str) -> Option<String> {
        if let Some(&i) = self.env_index.get(name) {
            return Some(self.env[i].1.clone());
        }
        self.arg_index
            .get(name)
            .and_then(|&i| self.args[i].1.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse, ParseErrorKind};

    fn amd64() -> Predefined {
        Predefined::for_host(Platform::parse("linux/amd64").unwrap())
    }

    fn decl(name: &str, value: &str) -> ArgDecl {
        ArgDecl {
            name: name.into(),
            default: Some(value.into()),
        }
    }

    #[test]
    fn a_stage_holds_at_most_max_scope_total() {
        let (g, b) = (GlobalScope::default(), BuildArgs::new());
        let mut s = StageScope::new();
        let mib = "v".repeat(MAX_VALUE_LEN);
        s.set_env("A", &mib).unwrap();
        // Replacing a value does not count it twice.
        s.set_env("A", &mib).unwrap();
        let e = s.set_env("B", &mib).unwrap_err();
        assert_eq!(e, ScopeError::TooMany { name: "B".into() });
        let e = s.declare_arg(&decl("C", &mib), &g, &b).unwrap_err();
        assert_eq!(e, ScopeError::TooMany { name: "C".into() });
        // Nothing was set by the failed calls.
        assert_eq!(s.lookup("B"), None);
        assert_eq!(s.lookup("C"), None);
        s.set_env("A", "small").unwrap();
        s.set_env("B", &mib).unwrap();
        let long = "v".repeat(MAX_VALUE_LEN + 1);
        let e = StageScope::new().set_env("L", &long).unwrap_err();
        assert!(matches!(e, ScopeError::ValueTooLong { .. }), "{e}");
        let e = StageScope::new()
            .declare_arg(
                &ArgDecl {
                    name: "L".into(),
                    default: None,
                },
                &g,
                &BuildArgs::from([("L".to_string(), long)]),
            )
            .unwrap_err();
        assert!(matches!(e, ScopeError::ValueTooLong { .. }), "{e}");
    }

    #[test]
    fn global_args_are_bounded_and_errors_name_the_line() {
        let mut text = format!("ARG A={}\n", "x".repeat(1000));
        for _ in 0..30 {
            text.push_str("ARG A=$A$A\n");
        }
        text.push_str("FROM scratch\n");
        let df = parse(&text, "Dockerfile").unwrap();
        let e = GlobalScope::new(&df, &BuildArgs::new(), &amd64()).unwrap_err();
        // Line 1 sets 1000 bytes, line n (n ≥ 2) 1000 · 2^(n-1): line 12 passes 1 MiB.
        assert!(e.to_string().starts_with("line 12: "), "{e}");
        assert!(matches!(
            e,
            ScopeError::Expand {
                source: ExpandError {
                    kind: crate::ExpandErrorKind::TooLong { .. },
                    ..
                },
                ..
            }
        ));
        // Many variables each under the limit.
        let mut text = String::new();
        for i in 0..3 {
            text.push_str(&format!("ARG V{i}={}\n", "x".repeat(60_000)));
        }
        text.push_str("FROM scratch\n");
        let df = parse(&text, "Dockerfile").unwrap();
        let big = "y".repeat(MAX_VALUE_LEN - 10);
        let args = BuildArgs::from([("V0".to_string(), big.clone()), ("V1".to_string(), big)]);
        let e = GlobalScope::new(&df, &args, &amd64()).unwrap_err();
        assert!(e.to_string().starts_with("line 2: "), "{e}");
        assert!(matches!(e, ScopeError::Global { .. }), "{e}");
        let _ = ParseErrorKind::NoStages;
    }
}
