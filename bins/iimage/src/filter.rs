//! Which images and names `iimage ls` shows: `docker images`'s `--filter` keys and its
//! `REPOSITORY[:TAG]` argument, with docker's rules. Filters of one key are alternatives
//! (`reference=a --filter reference=b`: either), except `label`, which all must hold;
//! different keys must all hold. `reference` patterns are Go's `path.Match` against the
//! short name (`busybox`) and the short name with its tag (`busybox:1.36`), and leave
//! out the names of an image that don't match, as docker does.
//!
//! Never: reads the store (the caller passes the images `before`/`since` name).

use imago_builder::glob::path_match;
use imago_store::{Image, ImageName};

use crate::common::parse_rfc3339;

/// A `--filter` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("invalid filter '{0}'")]
    Invalid(String),
    #[error("invalid filter '{0}': expected KEY=VALUE")]
    NoValue(String),
    #[error("invalid reference filter '{0}': {1}")]
    BadPattern(String, imago_builder::glob::BadPattern),
}

/// Every filter given, by key.
#[derive(Debug, Default)]
pub struct Selection {
    references: Vec<String>,
    dangling: Option<bool>,
    labels: Vec<(String, Option<String>)>,
    /// Created strictly before (seconds since the epoch), from `before=IMAGE`.
    before: Option<i64>,
    /// Created strictly after, from `since=IMAGE`.
    since: Option<i64>,
}

impl Selection {
    /// Parse `--filter` values and the `REPOSITORY[:TAG]` argument. `created_of` gives the
    /// creation time of the image `before=`/`since=` names (its error is the caller's:
    /// "No such image").
    pub fn parse<E: From<FilterError>>(
        filters: &[String],
        reference: Option<&str>,
        mut created_of: impl FnMut(&str) -> Result<Option<i64>, E>,
    ) -> Result<Selection, E> {
        let mut s = Selection::default();
        s.references.extend(reference.map(str::to_owned));
        for f in filters {
            let (key, value) = f
                .split_once('=')
                .ok_or_else(|| FilterError::NoValue(f.clone()))?;
            match key.to_ascii_lowercase().as_str() {
                "reference" => s.references.push(value.to_owned()),
                "dangling" => {
                    s.dangling = Some(match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(FilterError::Invalid(f.clone()).into()),
                    })
                }
                "label" => s.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (value.to_owned(), None),
                }),
                // No creation time never compares: docker treats it as the epoch.
                "before" => s.before = Some(created_of(value)?.unwrap_or(0)),
                "since" => s.since = Some(created_of(value)?.unwrap_or(0)),
                _ => return Err(FilterError::Invalid(f.clone()).into()),
            }
        }
        for r in &s.references {
            // A malformed pattern is the user's error, said once, before any listing.
            path_match(r, "x").map_err(|e| FilterError::BadPattern(r.clone(), e))?;
        }
        Ok(s)
    }

    /// Whether `image` is shown at all (its names are then [`Selection::keeps_name`]'s).
    pub fn keeps_image(&self, image: &Image) -> bool {
        let created = image.created().and_then(parse_rfc3339).unwrap_or(0);
        let labels = image
            .config
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone());
        let has_label = |(k, v): &(String, Option<String>)| {
            let found = labels.as_ref().and_then(|l| l.get(k));
            match (found, v) {
                (Some(found), Some(v)) => found == v,
                (found, None) => found.is_some(),
                (None, Some(_)) => false,
            }
        };
        self.dangling.is_none_or(|d| d == image.names.is_empty())
            && self.labels.iter().all(has_label)
            && self.before.is_none_or(|t| created < t)
            && self.since.is_none_or(|t| created > t)
            && (self.references.is_empty() || image.names.iter().any(|n| self.keeps_name(n)))
    }

    /// Whether the row of `name` is shown (all are without a reference filter).
    pub fn keeps_name(&self, name: &ImageName) -> bool {
        let tagged = format!("{}:{}", name.repository, name.tag);
        self.references.iter().any(|pattern| {
            [name.repository.as_str(), tagged.as_str()]
                .iter()
                .any(|candidate| path_match(pattern, candidate).unwrap_or(false))
        }) || self.references.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(filters: &[&str], reference: Option<&str>) -> Result<Selection, FilterError> {
        let filters: Vec<String> = filters.iter().map(|s| s.to_string()).collect();
        Selection::parse(&filters, reference, |_| Ok::<_, FilterError>(Some(100)))
    }

    fn name(repository: &str, tag: &str) -> ImageName {
        ImageName {
            ref_name: format!("{repository}:{tag}"),
            repository: repository.into(),
            tag: tag.into(),
            full: None,
        }
    }

    #[test]
    fn references_match_the_short_name_with_or_without_its_tag() {
        let s = sel(&["reference=busy*"], None).unwrap();
        assert!(s.keeps_name(&name("busybox", "latest")));
        assert!(!s.keeps_name(&name("alpine", "busy")));
        let s = sel(&[], Some("busybox:1.*")).unwrap();
        assert!(s.keeps_name(&name("busybox", "1.36")));
        assert!(!s.keeps_name(&name("busybox", "latest")));
        // `*` does not cross `/`, as Go's path.Match
        let s = sel(&["reference=*"], None).unwrap();
        assert!(!s.keeps_name(&name("user/app", "1")));
        // two reference filters: either
        let s = sel(&["reference=a", "reference=b"], None).unwrap();
        assert!(s.keeps_name(&name("b", "1")));
    }

    #[test]
    fn bad_filters_are_named() {
        let e = sel(&["colour=red"], None).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'colour=red'");
        let e = sel(&["dangling=maybe"], None).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'dangling=maybe'");
        let e = sel(&["dangling"], None).unwrap_err();
        assert!(e.to_string().contains("KEY=VALUE"), "{e}");
        let e = sel(&["reference=a["], None).unwrap_err();
        assert!(e.to_string().contains("a["), "{e}");
    }
}
