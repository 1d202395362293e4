//! ARG/ENV scoping, BuildKit's rules: the global scope (predefined platform args + ARGs
//! before the first FROM, usable only in FROM lines), per-stage scopes (an ARG is visible
//! after its declaration; a global is redeclared with `ARG name`; `--build-arg` beats
//! defaults; ENV beats ARG), and the environment a RUN sees (ENV + ARGs with values +
//! proxy build args).
//! Never: reads the process environment or image configs (the engine passes them in).

use crate::expand::{ExpandError, Lookup, ShellLex};
use crate::model::{ArgDecl, Dockerfile, InstructionKind, Stage};
use std::collections::{BTreeMap, HashMap};

/// `--build-arg name=value` pairs.
pub type BuildArgs = BTreeMap<String, String>;

/// The proxy build args that reach RUN without an ARG declaration, and stay out of the
/// image history and cache key.
pub const PROXY_ARGS: [&str; 12] = [
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
    // BuildKit also passes these two through.
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// True for the names in [`PROXY_ARGS`].
pub fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.contains(&name)
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

    /// The platform this program was compiled for, in OCI names (`x86_64` → `amd64`).
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            arch: arch.to_string(),
            variant: None,
        }
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
    /// Build and target both the host.
    pub fn host() -> Predefined {
        Predefined {
            target: Platform::host(),
            build: Platform::host(),
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
    pub fn new(
        df: &Dockerfile,
        build_args: &BuildArgs,
        predefined: &Predefined,
    ) -> Result<GlobalScope, ExpandError> {
        let lex = ShellLex::new(df.escape);
        let mut scope = GlobalScope {
            vars: predefined
                .args()
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect(),
        };
        for meta in &df.meta_args {
            for decl in &meta.args {
                let name = lex.expand_word(&decl.name, &scope)?;
                // As BuildKit: a --build-arg replaces the default, which is then not even
                // expanded (so `ARG FOO=${FOO:?required}` works as "required build arg").
                let value = match build_args.get(&name) {
                    Some(v) => Some(v.clone()),
                    None => decl
                        .default
                        .as_deref()
                        .map(|d| lex.expand_word(d, &scope))
                        .transpose()?,
                };
                scope.set(name, value);
            }
        }
        Ok(scope)
    }

    fn set(&mut self, name: String, value: Option<String>) {
        match self.vars.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
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
}

impl StageScope {
    /// An empty scope (a stage FROM `scratch`).
    pub fn new() -> StageScope {
        StageScope::default()
    }

    /// A scope starting with an image's config `Env` (`KEY=value` strings).
    pub fn with_image_env<'a>(env: impl IntoIterator<Item = &'a str>) -> StageScope {
        let mut s = StageScope::new();
        for e in env {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            s.set_env(k, v);
        }
        s
    }

    /// Declares an (already expanded) ARG: the value is the `--build-arg` if given, else
    /// the default, else the global of that name (predefined args included), else unset.
    pub fn declare_arg(&mut self, decl: &ArgDecl, global: &GlobalScope, build_args: &BuildArgs) {
        let value = build_args
            .get(&decl.name)
            .cloned()
            .or_else(|| decl.default.clone())
            .or_else(|| global.value(&decl.name).map(str::to_string));
        match self.arg_index.get(&decl.name) {
            Some(&i) => self.args[i].1 = value,
            None => {
                self.arg_index.insert(decl.name.clone(), self.args.len());
                self.args.push((decl.name.clone(), value));
            }
        }
    }

    /// Sets an ENV variable; setting it again keeps its position.
    pub fn set_env(&mut self, key: &str, value: &str) {
        match self.env_index.get(key) {
            Some(&i) => self.env[i].1 = value.to_string(),
            None => {
                self.env_index.insert(key.to_string(), self.env.len());
                self.env.push((key.to_string(), value.to_string()));
            }
        }
    }

    /// Applies an **expanded** ENV or ARG instruction (others are ignored).
    pub fn apply(&mut self, kind: &InstructionKind, global: &GlobalScope, build_args: &BuildArgs) {
        match kind {
            InstructionKind::Env(kvs) => {
                for kv in kvs {
                    self.set_env(&kv.key, &kv.value);
                }
            }
            InstructionKind::Arg(decls) => {
                for d in decls {
                    self.declare_arg(d, global, build_args);
                }
            }
            _ => {}
        }
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
