//! Image references, parsed and normalised exactly as docker does
//! (github.com/distribution/reference, `ParseNormalizedNamed` + `TagNameOnly`):
//! `busybox` → `docker.io/library/busybox:latest`, `user/app` → `docker.io/user/app:latest`,
//! `localhost:5000/app:1`, `name@sha256:…`, `name:tag@sha256:…`.
//!
//! Owns: the grammar, the normalisation, docker's short ("familiar") form, the registry
//! endpoint of Docker Hub. Never: resolves a name in a store or asks a registry.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry a name without a domain belongs to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The host that serves [`DEFAULT_REGISTRY`]'s API.
pub const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";
/// The repository namespace of single-component names on Docker Hub.
pub const OFFICIAL_NAMESPACE: &str = "library";
/// The tag a reference without tag and digest gets.
pub const DEFAULT_TAG: &str = "latest";
/// Docker's limit on the length of a name (domain + path).
pub const NAME_MAX: usize = 255;

/// A normalised image reference: registry, repository, and a tag and/or a digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference. Every variant names the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference `{0}`: it is empty")]
    Empty(String),
    #[error("invalid reference `{input}`: repository name `{repository}` must be lowercase")]
    Uppercase { input: String, repository: String },
    #[error("invalid reference `{input}`: name is longer than {NAME_MAX} characters")]
    NameTooLong { input: String },
    #[error("invalid reference `{input}`: bad registry host `{domain}`")]
    Domain { input: String, domain: String },
    #[error(
        "invalid reference `{input}`: bad path component `{component}` (lowercase letters, digits \
         and single `.`, `_`, `__` or runs of `-` between them)"
    )]
    Component { input: String, component: String },
    #[error("invalid reference `{input}`: bad tag `{tag}` (at most 128 of [A-Za-z0-9_.-], not starting with `.` or `-`)")]
    Tag { input: String, tag: String },
    #[error("invalid reference `{input}`: bad digest `{digest}`: {reason}")]
    Digest {
        input: String,
        digest: String,
        reason: String,
    },
    #[error(
        "invalid reference `{input}`: a repository name cannot be a 64-character hex string \
         (to name an image by id, use its id, not a reference)"
    )]
    HexName { input: String },
}

impl Reference {
    /// Parse and normalise like `docker pull`: the default registry and `library/`
    /// namespace are added, and `:latest` when neither tag nor digest is given.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_without_default_tag(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }

    /// Like [`Reference::parse`] but leaves the tag empty when the input has none (to tell
    /// `busybox` from `busybox:latest`, as `docker push` of all tags does).
    pub fn parse_without_default_tag(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty(input.to_owned()));
        }
        // name [":" tag] ["@" digest]
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = d.parse::<Digest>().map_err(|e| ReferenceError::Digest {
                    input: input.to_owned(),
                    digest: d.to_owned(),
                    reason: e.to_string(),
                })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // The tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::Empty(input.to_owned()));
        }
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::Tag {
                    input: input.to_owned(),
                    tag: t.to_owned(),
                });
            }
        }
        if name.len() > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                input: input.to_owned(),
            });
        }
        let (explicit_domain, remainder) = split_domain(name);
        if let Some(d) = explicit_domain {
            if !valid_domain(d) {
                return Err(ReferenceError::Domain {
                    input: input.to_owned(),
                    domain: d.to_owned(),
                });
            }
        }
        let registry = match explicit_domain {
            None | Some("index.docker.io") => DEFAULT_REGISTRY.to_owned(),
            Some(d) => d.to_owned(),
        };
        if remainder.to_lowercase() != remainder {
            return Err(ReferenceError::Uppercase {
                input: input.to_owned(),
                repository: remainder.to_owned(),
            });
        }
        for component in remainder.split('/') {
            if !valid_component(component) {
                return Err(ReferenceError::Component {
                    input: input.to_owned(),
                    component: component.to_owned(),
                });
            }
        }
        if remainder.len() == 64 && remainder.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexName {
                input: input.to_owned(),
            });
        }
        let repository = if registry == DEFAULT_REGISTRY && !remainder.contains('/') {
            format!("{OFFICIAL_NAMESPACE}/{remainder}")
        } else {
            remainder.to_owned()
        };
        // docker checks the normalised name (`docker.io/library/…`): a short name that
        // fits only before normalising would print as a reference that does not parse.
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                input: input.to_owned(),
            });
        }
        Ok(Self {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry domain as normalised (`docker.io`, `localhost:5000`, `quay.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) to talk to: [`DOCKER_HUB_ENDPOINT`] for `docker.io`, else the
    /// registry itself.
    pub fn registry_endpoint(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_ENDPOINT
        } else {
            &self.registry
        }
    }

    /// The repository path within the registry (`library/busybox`, `user/app`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `registry/repository`, without tag or digest (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// True for Docker Hub references.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DEFAULT_REGISTRY
    }

    /// The same name with another tag; the digest, if any, is dropped.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Tag {
                input: format!("{}:{tag}", self.name()),
                tag: tag.to_owned(),
            });
        }
        Ok(Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same name pinned to a digest; the tag is kept.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same name and tag without the digest.
    pub fn without_digest(&self) -> Self {
        Self {
            digest: None,
            ..self.clone()
        }
    }

    /// The same name with neither tag nor digest.
    pub fn without_tag_or_digest(&self) -> Self {
        Self {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// Docker's short name: `docker.io/` and `library/` dropped (`busybox`, `user/app`,
    /// `localhost:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_owned(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// Docker's short form with tag and digest (`busybox:latest`, `app@sha256:…`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        push_tag_digest(&mut s, self.tag.as_deref(), self.digest.as_ref());
        s
    }
}

fn push_tag_digest(s: &mut String, tag: Option<&str>, digest: Option<&Digest>) {
    if let Some(t) = tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(&d.to_string());
    }
}

/// docker's `splitDockerDomain`: the first component is a domain when it holds `.` or
/// `:`, is `localhost`, or has an uppercase letter (so the uppercase is reported there).
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// `host[:port]`, host being dotted DNS labels, an IPv4 address or `[IPv6]`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__`, or one or more `-`.
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl fmt::Display for Reference {
    /// The full normalised form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        push_tag_digest(&mut s, self.tag.as_deref(), self.digest.as_ref());
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("user/app", "docker.io/user/app:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("docker.io/library/busybox:x", "docker.io/library/busybox:x"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/app:1", "localhost:5000/app:1"),
            ("quay.io/a/b/c:v1.0-rc_1", "quay.io/a/b/c:v1.0-rc_1"),
            ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest"),
            ("[::1]:5000/x", "[::1]:5000/x:latest"),
            ("ab/c__d/e--f.g_h", "docker.io/ab/c__d/e--f.g_h:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(full(input), want, "{input}");
        }
    }

    #[test]
    fn digests_and_tag_plus_digest() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.familiar(), format!("busybox@{D}"));
        let r = Reference::parse(&format!("localhost:5000/app:1@{D}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.to_string(), format!("localhost:5000/app:1@{D}"));
    }

    #[test]
    fn accessors_and_familiar_forms() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.registry_endpoint(), "registry-1.docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.familiar_name(), "busybox");
        assert!(r.is_docker_hub());
        assert_eq!(
            Reference::parse("user/app:2").unwrap().familiar(),
            "user/app:2"
        );
        assert_eq!(
            Reference::parse("docker.io/library/a/b")
                .unwrap()
                .familiar_name(),
            "library/a/b"
        );
        let l = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(l.familiar(), "localhost:5000/app:latest");
        assert_eq!(l.registry_endpoint(), "localhost:5000");
        assert_eq!(
            l.with_tag("v2").unwrap().to_string(),
            "localhost:5000/app:v2"
        );
        assert!(l.with_tag("-bad").is_err());
        assert_eq!(
            Reference::parse_without_default_tag("busybox")
                .unwrap()
                .tag(),
            None
        );
    }

    #[test]
    fn refuses_bad_input_naming_it() {
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("Busybox", "must be lowercase"),
            ("user/App", "must be lowercase"),
            ("busybox:", "bad tag"),
            ("busybox:.x", "bad tag"),
            ("busy box", "bad path component"),
            ("a//b", "bad path component"),
            ("a/", "bad path component"),
            ("-a", "bad path component"),
            ("a..b", "bad path component"),
            ("a___b", "bad path component"),
            ("localhost:abc/x", "bad registry host"),
            ("local_host.com/x", "bad registry host"),
            ("busybox@sha256:abc", "bad digest"),
            ("busybox@md5:0123", "bad digest"),
            (":tag", "empty"),
            ("@sha256:abc", "bad digest"),
        ];
        for (input, want) in bad {
            let err = Reference::parse(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input}: {err}");
            assert!(err.contains(&format!("`{input}`")), "{input}: {err}");
        }
        let long = "a".repeat(300);
        assert!(matches!(
            Reference::parse(&long),
            Err(ReferenceError::NameTooLong { .. })
        ));
        // Fits as typed, not once normalised (`docker.io/library/` + 250).
        let short_long = "a".repeat(250);
        assert!(matches!(
            Reference::parse(&short_long),
            Err(ReferenceError::NameTooLong { .. })
        ));
        let hex = "0123456789abcdef".repeat(4);
        assert!(matches!(
            Reference::parse(&hex),
            Err(ReferenceError::HexName { .. })
        ));
    }

    #[test]
    fn uppercase_domain_is_a_domain() {
        // docker treats `Foo/bar`'s first part as a domain (it has uppercase), and that is
        // a valid host name.
        assert_eq!(full("Foo.io/bar"), "Foo.io/bar:latest");
    }
}
