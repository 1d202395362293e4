//! Manifests as the wire carries them: telling an image manifest from an index /
//! manifest list, the descriptors a manifest names, choosing an index entry for a
//! platform, and the manifest reference (tag or digest) of an image reference. Pure:
//! bytes in, values out.
//!
//! Never: fetches or stores anything, or keeps its own list of media types (imago-oci's
//! `media_type` is the one list).

use std::fmt;
use std::str::FromStr;

use imago_oci::media_type::{is_index, is_manifest, OCI_INDEX, OCI_MANIFEST};
use imago_oci::reference::DEFAULT_TAG;
use imago_oci::{platform, BlobRef, Reference};

/// The largest manifest or index imago reads: real ones are a few KiB (distribution
/// refuses to store more than 4 MiB), so anything larger is not a manifest.
pub const MAX_BYTES: u64 = 8 << 20;

/// What a manifest document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Index,
}

/// A parsed manifest: its media type, kind, and the descriptors it names.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub media_type: String,
    pub kind: Kind,
    /// Image: the config. Index: none.
    pub config: Option<BlobRef>,
    /// Image: the layers. Index: the child manifests.
    pub children: Vec<(BlobRef, Option<Platform>)>,
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("unsupported manifest media type `{0}` (schema 1 and others are not supported)")]
    MediaType(String),
    #[error("bad descriptor: {0}")]
    Descriptor(String),
}

/// Parse manifest bytes; `content_type` is the response header (the body's own
/// `mediaType` wins when present).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Parsed, ManifestError> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let header_type = content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_owned());
    let media_type = v["mediaType"]
        .as_str()
        .map(str::to_owned)
        .or(header_type)
        .unwrap_or_else(|| {
            if v.get("manifests").is_some() {
                OCI_INDEX.into()
            } else {
                OCI_MANIFEST.into()
            }
        });
    let desc = |d: &serde_json::Value| -> Result<BlobRef, ManifestError> {
        serde_json::from_value(d.clone()).map_err(|e| ManifestError::Descriptor(e.to_string()))
    };
    match media_type.as_str() {
        mt if is_manifest(mt) => {
            let config = Some(desc(&v["config"])?);
            let children = v["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| Ok((desc(l)?, None)))
                .collect::<Result<_, _>>()?;
            Ok(Parsed {
                media_type,
                kind: Kind::Image,
                config,
                children,
            })
        }
        mt if is_index(mt) => {
            let children = v["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    Ok((
                        desc(m)?,
                        serde_json::from_value::<PlatformJson>(m["platform"].clone())
                            .ok()
                            .map(Platform::from),
                    ))
                })
                .collect::<Result<_, _>>()?;
            Ok(Parsed {
                media_type,
                kind: Kind::Index,
                config: None,
                children,
            })
        }
        other => Err(ManifestError::MediaType(other.to_owned())),
    }
}

/// The manifest to GET or PUT for `r`: its digest, else its tag, else `latest`.
pub fn manifest_ref(r: &Reference) -> String {
    r.digest()
        .map(|d| d.to_string())
        .or_else(|| r.tag().map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_TAG.to_owned())
}

/// An OS/architecture/variant triple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

#[derive(serde::Deserialize)]
struct PlatformJson {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

impl From<PlatformJson> for Platform {
    fn from(p: PlatformJson) -> Self {
        Self {
            os: p.os,
            arch: p.architecture,
            variant: p.variant.filter(|v| !v.is_empty()),
        }
    }
}

impl Platform {
    /// The platform this program runs on, in OCI's spelling (imago-oci's `platform`
    /// is the one mapping from Rust's names).
    pub fn host() -> Self {
        Self {
            os: platform::HOST_OS.into(),
            arch: platform::host_arch().into(),
            variant: platform::host_variant().map(str::to_owned),
        }
    }

    /// The OS/architecture/variant an image config (JSON) declares; none when it
    /// declares none (such an image serves any platform asked for).
    pub fn of_config(config: &[u8]) -> Option<Platform> {
        serde_json::from_slice::<PlatformJson>(config)
            .ok()
            .filter(|p| !p.os.is_empty() && !p.architecture.is_empty())
            .map(Platform::from)
    }

    /// Does an index entry for `other` serve us? A variant we did not ask for is fine;
    /// arm64's `v8` equals no variant.
    pub fn matches(&self, other: &Platform) -> bool {
        let norm = |p: &Platform| match (p.arch.as_str(), p.variant.as_deref()) {
            ("arm64", Some("v8")) => None,
            (_, v) => v.map(str::to_owned),
        };
        self.os == other.os
            && self.arch == other.arch
            && (self.variant.is_none() || norm(self) == norm(other))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(',') {
            return Err(format!(
                "`{s}` is a list of platforms: imago takes one platform at a time"
            ));
        }
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: (*os).into(),
                arch: (*arch).into(),
                variant: None,
            }),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => Ok(Self {
                os: (*os).into(),
                arch: (*arch).into(),
                variant: Some((*v).into()),
            }),
            _ => Err(format!(
                "invalid platform `{s}`: expected OS/ARCH[/VARIANT], e.g. linux/arm64"
            )),
        }
    }
}

/// The index entry for `want`, or the list of what the index has.
pub fn choose<'a>(index: &'a Parsed, want: &Platform) -> Result<&'a BlobRef, String> {
    index
        .children
        .iter()
        .find(|(_, p)| p.as_ref().is_some_and(|p| want.matches(p)))
        .map(|(d, _)| d)
        .ok_or_else(|| {
            let have: Vec<String> = index
                .children
                .iter()
                .filter_map(|(_, p)| p.as_ref().map(|p| p.to_string()))
                .collect();
            if have.is_empty() {
                "no platforms".into()
            } else {
                have.join(", ")
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":2,"platform":{"os":"linux","architecture":"amd64"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":3,"platform":{"os":"unknown","architecture":"unknown"}}]}"#;

    #[test]
    fn manifest_ref_is_digest_then_tag() {
        let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let r = |s: &str| Reference::parse(s).unwrap();
        assert_eq!(manifest_ref(&r(&format!("r:1/a:2@{d}"))), d);
        assert_eq!(manifest_ref(&r("r:1/a:2")), "2");
        assert_eq!(manifest_ref(&r("busybox")), "latest");
    }

    #[test]
    fn index_platform_choice() {
        let p = parse(INDEX.as_bytes(), None).unwrap();
        assert_eq!(p.kind, Kind::Index);
        assert_eq!(choose(&p, &"linux/amd64".parse().unwrap()).unwrap().size, 2);
        assert_eq!(choose(&p, &"linux/arm64".parse().unwrap()).unwrap().size, 1);
        assert_eq!(
            choose(&p, &"linux/arm64/v8".parse().unwrap()).unwrap().size,
            1
        );
        let e = choose(&p, &"linux/s390x".parse().unwrap()).unwrap_err();
        assert!(
            e.contains("linux/amd64") && e.contains("linux/arm64/v8"),
            "{e}"
        );
        assert!("linux".parse::<Platform>().is_err());
        let list = "linux/amd64,linux/arm64".parse::<Platform>().unwrap_err();
        assert!(list.contains("one platform"), "{list}");
    }

    #[test]
    fn a_config_declares_its_platform() {
        let p = Platform::of_config(
            br#"{"os":"linux","architecture":"arm","variant":"v7","config":{}}"#,
        );
        assert_eq!(p.unwrap().to_string(), "linux/arm/v7");
        assert_eq!(Platform::of_config(br#"{"os":"linux"}"#), None);
        assert_eq!(
            Platform::of_config(br#"{"os":"","architecture":"amd64"}"#),
            None
        );
    }

    #[test]
    fn image_manifest_and_media_type_rules() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":5},
          "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":7}]}"#;
        let p = parse(
            m,
            Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
        )
        .unwrap();
        assert_eq!(p.media_type, imago_oci::media_type::DOCKER_MANIFEST);
        assert_eq!(p.kind, Kind::Image);
        assert_eq!(p.children.len(), 1);
        assert_eq!(p.config.unwrap().size, 5);
        let e = parse(br#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#, None).unwrap_err();
        assert!(matches!(e, ManifestError::MediaType(_)));
    }
}
