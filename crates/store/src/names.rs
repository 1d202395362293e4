//! How image names map to `org.opencontainers.image.ref.name` annotations.
//!
//! The store writes a name as docker's short ("familiar") form, with a `:latest` tag left
//! out: `busybox` (for docker.io/library/busybox:latest), `busybox:1.36`, `user/app`,
//! `localhost:5000/app:1`. So `skopeo copy oci:$ROOT:busybox …` finds what `itag … busybox`
//! made, and the ref.name parses back to the same normalised reference.
//!
//! User input matches an entry when it is the raw ref.name, or when both parse to the
//! same normalised reference (`busybox`, `busybox:latest` and
//! `docker.io/library/busybox:latest` are one name). ref.names that are not valid
//! references (another tool may write anything) are listed as they are, tag `<none>`.
//! Never: touches files.

use imago_oci::reference::{Reference, DEFAULT_TAG};

use crate::error::{Result, StoreError};

/// The ref.name to store for a user-given name; the name must not carry a digest.
pub fn ref_name_for(input: &str) -> Result<(Reference, String)> {
    let r = Reference::parse(input).map_err(|e| StoreError::InvalidName {
        input: input.into(),
        why: e.to_string(),
    })?;
    if r.digest().is_some() {
        return Err(StoreError::InvalidName {
            input: input.into(),
            why: "a name to tag with cannot carry a digest".into(),
        });
    }
    Ok((r.clone(), short_form(&r)))
}

/// The familiar name, `:tag` unless the tag is `latest`.
pub fn short_form(r: &Reference) -> String {
    let mut s = r.familiar_name();
    if let Some(t) = r.tag() {
        if t != DEFAULT_TAG {
            s.push(':');
            s.push_str(t);
        }
    }
    s
}

/// Whether the stored `ref_name` is what the user means by `input`.
pub fn matches(ref_name: &str, input: &str) -> bool {
    if ref_name == input {
        return true;
    }
    match (Reference::parse(ref_name), Reference::parse(input)) {
        (Ok(a), Ok(b)) => a.digest().is_none() && b.digest().is_none() && a == b,
        _ => false,
    }
}

/// One name of an image, as `iimage ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageName {
    /// The annotation value in index.json.
    pub ref_name: String,
    /// Docker's short repository (`busybox`, `user/app`, `localhost:5000/app`), or the raw
    /// ref.name when it is not a valid reference.
    pub repository: String,
    /// The tag, or `<none>`.
    pub tag: String,
    /// The full normalised reference (`docker.io/library/busybox:latest`), when valid.
    pub full: Option<String>,
}

impl ImageName {
    pub fn from_ref_name(ref_name: &str) -> Self {
        match Reference::parse(ref_name) {
            Ok(r) if r.digest().is_none() => ImageName {
                ref_name: ref_name.into(),
                repository: r.familiar_name(),
                tag: r.tag().unwrap_or(DEFAULT_TAG).into(),
                full: Some(r.to_string()),
            },
            _ => ImageName {
                ref_name: ref_name.into(),
                repository: ref_name.into(),
                tag: "<none>".into(),
                full: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        assert_eq!(ref_name_for("busybox").unwrap().1, "busybox");
        assert_eq!(
            ref_name_for("docker.io/library/busybox:latest").unwrap().1,
            "busybox"
        );
        assert_eq!(ref_name_for("busybox:1.36").unwrap().1, "busybox:1.36");
        assert_eq!(ref_name_for("user/app").unwrap().1, "user/app");
        assert_eq!(
            ref_name_for("localhost:5000/app:1").unwrap().1,
            "localhost:5000/app:1"
        );
        assert!(ref_name_for("Busybox").is_err());
        let d = imago_oci::Digest::of(b"x");
        assert!(ref_name_for(&format!("busybox@{d}")).is_err());
    }

    #[test]
    fn matching_normalises_both_sides() {
        assert!(matches("busybox", "docker.io/library/busybox:latest"));
        assert!(matches("busybox", "busybox:latest"));
        assert!(!matches("busybox", "busybox:1"));
        assert!(matches("x", "x"));
        assert!(matches("Weird Name", "Weird Name"));
    }

    #[test]
    fn listing_names() {
        let n = ImageName::from_ref_name("busybox");
        assert_eq!(
            (n.repository.as_str(), n.tag.as_str()),
            ("busybox", "latest")
        );
        let n = ImageName::from_ref_name("localhost:5000/a/b:2");
        assert_eq!(
            (n.repository.as_str(), n.tag.as_str()),
            ("localhost:5000/a/b", "2")
        );
        let n = ImageName::from_ref_name("NOT VALID");
        assert_eq!(n.tag, "<none>");
    }
}
