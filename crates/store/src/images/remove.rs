//! Removing images, with docker rmi's semantics: by name, the name goes and the image
//! with its last name; by id or digest, the image goes (refused while it has more than
//! one name, unless forced). A damaged image is removed by its index entries.
//!
//! Owns: which index entries a removal drops. Never: deletes blobs (gc does, later).

use imago_oci::Digest;

use super::Image;
use crate::error::{Result, StoreError};
use crate::names;
use crate::store::Store;

/// What `remove_image` did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Removed {
    /// Names removed (ref.names).
    pub untagged: Vec<String>,
    /// Image ids deleted from the index (their blobs go at the next gc).
    pub deleted: Vec<Digest>,
}

impl Store {
    /// docker rmi: by name, remove that name and delete the image when it was its last
    /// name; by id/digest, delete the image, refused when it has more than one name
    /// unless `force`. Blobs go at the next gc. A damaged image (its manifest or config
    /// unreadable) is removed by name or manifest digest: its index entries go, so gc
    /// no longer refuses the store and the image can be pulled or loaded again.
    pub fn remove_image(&self, input: &str, force: bool) -> Result<Removed> {
        let img = match self.resolve(input) {
            Ok(img) => match img.origin {
                Some(store) => {
                    return Err(StoreError::SharedReadOnly {
                        input: input.into(),
                        store,
                    })
                }
                None => img,
            },
            Err(StoreError::ImageDamaged { .. }) => return self.remove_damaged(input),
            Err(e) => return Err(e),
        };
        let by_name = img
            .names
            .iter()
            .find(|n| names::matches(&n.ref_name, input))
            .cloned();
        let id = img.id().clone();
        let all = self.list_images_here()?;
        let same_id: Vec<&Image> = all.iter().filter(|i| i.id() == &id).collect();
        let total_names: Vec<String> = same_id
            .iter()
            .flat_map(|i| i.names.iter().map(|n| n.ref_name.clone()))
            .collect();
        let mut removed = Removed::default();
        if let Some(n) = by_name {
            if total_names.len() > 1 {
                self.untag(&n.ref_name)?;
                removed.untagged.push(n.ref_name);
                return Ok(removed);
            }
        } else if total_names.len() > 1 && !force {
            return Err(StoreError::ImageHasNames {
                id: id.short().into(),
                names: total_names,
            });
        }
        let digests: Vec<Digest> = same_id.iter().map(|i| i.index_digest.clone()).collect();
        self.update_index(|idx| {
            idx.manifests.retain(|e| !digests.contains(&e.digest));
            Ok((true, ()))
        })?;
        removed.untagged = total_names;
        removed.deleted.push(id);
        Ok(removed)
    }

    /// Drop the index entries of a damaged image named by `input` (a name: that entry,
    /// and the image's unnamed entry; a manifest digest: every entry of it).
    fn remove_damaged(&self, input: &str) -> Result<Removed> {
        let hex = input.rsplit_once('@').map_or(input, |(_, d)| d);
        let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
        let by_digest = Digest::from_hex(hex).ok();
        self.update_index(|idx| {
            let named = idx
                .manifests
                .iter()
                .find(|e| e.ref_name().is_some_and(|n| names::matches(n, input)))
                .map(|e| e.digest.clone());
            let Some(digest) = named.clone().or(by_digest) else {
                return Err(StoreError::ImageNotFound {
                    input: input.into(),
                });
            };
            let mut removed = Removed::default();
            idx.manifests.retain(|e| {
                let goes = e.digest == digest
                    && (named.is_none() || e.ref_name().is_none_or(|n| names::matches(n, input)));
                if goes {
                    removed.untagged.extend(e.ref_name().map(str::to_owned));
                }
                !goes
            });
            // The image goes with its last entry; its id (config) is unreadable, so the
            // manifest digest stands for it.
            if !idx.manifests.iter().any(|e| e.digest == digest) {
                removed.deleted.push(digest);
            }
            Ok((true, removed))
        })
    }
}
