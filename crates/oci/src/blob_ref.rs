//! [`BlobRef`]: a blob as a manifest names it (media type, sha256 digest, size), the one
//! such type of the workspace: the registry pulls and pushes by it, the store lists and
//! writes manifest layers with it, and the builder's cache entries embed it.
//!
//! Never: reads or checks the blob it names, or carries the optional descriptor fields
//! (`urls`, `annotations`, `platform`): code that needs those uses
//! [`spec::Descriptor`](crate::spec::Descriptor).

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// A blob as a manifest names it. Serialised with the manifest's field names
/// (`mediaType`, `digest`, `size`), so a manifest's `config`, `layers` and `manifests`
/// entries deserialise into it and unknown fields are ignored. Unlike
/// [`spec::Descriptor`](crate::spec::Descriptor), its digest is imago's sha256
/// [`Digest`], which every store call takes: a descriptor of another algorithm fails to
/// parse here instead of later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobRef {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl BlobRef {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn serde_uses_the_manifest_field_names() {
        let b = BlobRef::new("application/x", D.parse().unwrap(), 5);
        let j = serde_json::to_string(&b).unwrap();
        assert_eq!(
            j,
            format!(r#"{{"mediaType":"application/x","digest":"{D}","size":5}}"#)
        );
        let with_extra = format!(
            r#"{{"mediaType":"application/x","digest":"{D}","size":5,"annotations":{{"a":"b"}}}}"#
        );
        assert_eq!(serde_json::from_str::<BlobRef>(&with_extra).unwrap(), b);
    }

    #[test]
    fn refuses_other_digest_algorithms_and_missing_fields() {
        let sha512 = format!(
            r#"{{"mediaType":"m","digest":"sha512:{}","size":1}}"#,
            "a".repeat(128)
        );
        assert!(serde_json::from_str::<BlobRef>(&sha512).is_err());
        let no_size = format!(r#"{{"mediaType":"m","digest":"{D}"}}"#);
        assert!(serde_json::from_str::<BlobRef>(&no_size).is_err());
    }
}
