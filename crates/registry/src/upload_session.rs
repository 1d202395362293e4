//! Saved upload sessions, so that a push killed halfway through a chunked upload resumes
//! it: after every chunk the registry acknowledged, the session's latest `Location` and
//! the bytes it holds are written to `ROOT/imago/registry/uploads/<key>` (key: a hash of
//! registry, repository and blob digest). The next push of that blob asks the registry
//! where the session stands (`GET <location>`, push.rs) and sends only the rest.
//!
//! The file holds no secret (the `Location` is the registry's own URL; tokens are never
//! written) and is advisory: a missing, damaged or day-old file means a fresh session.
//!
//! Never: talks to the registry (push.rs does), trusts the saved offset over the one the
//! registry reports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use imago_oci::Digest;

/// Sessions older than this are not resumed: registries purge abandoned uploads.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The longest `Location` kept (real ones are a few hundred bytes).
const MAX_LOCATION: usize = 8 << 10;

/// What could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("save upload session {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One saved session: where to continue and how many bytes the registry acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub location: String,
    pub offset: u64,
}

/// The file of the session for `digest` pushed to `registry/repository`, under the
/// registry state dir (`None`: no state dir, nothing is saved).
pub fn file(
    state: Option<&Path>,
    registry: &str,
    repository: &str,
    digest: &Digest,
) -> Option<PathBuf> {
    let key = Digest::of(format!("{registry}/{repository}@{digest}").as_bytes());
    Some(state?.join("uploads").join(key.hex()))
}

/// The saved session in `path`, unless missing, damaged or stale.
pub fn load(path: &Path) -> Option<Saved> {
    let meta = std::fs::metadata(path).ok()?;
    let age = meta.modified().ok()?.elapsed().unwrap_or_default();
    if age > MAX_AGE || meta.len() > (MAX_LOCATION as u64) + 64 {
        forget(path);
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let location = lines.next()?.to_owned();
    let offset = lines.next()?.trim().parse().ok()?;
    let valid = location.starts_with("http://") || location.starts_with("https://");
    valid.then_some(Saved { location, offset })
}

/// Save `s` atomically (temp file and rename beside it).
pub fn save(path: &Path, s: &Saved) -> Result<(), SessionError> {
    let io = |source| SessionError::Io {
        path: path.to_owned(),
        source,
    };
    if s.location.len() > MAX_LOCATION || s.location.contains('\n') {
        return Ok(()); // not resumable; a fresh session is the fallback
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    write!(tmp, "{}\n{}\n", s.location, s.offset).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Remove a saved session (done, or not resumable).
pub fn forget(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::debug!(%e, path = %path.display(), "saved upload session not removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_and_bad_files_are_ignored() {
        let t = tempfile::tempdir().unwrap();
        let d = Digest::of(b"x");
        let p = file(Some(t.path()), "127.0.0.1:5000", "me/x", &d).unwrap();
        assert_ne!(
            p,
            file(Some(t.path()), "127.0.0.1:5000", "me/y", &d).unwrap()
        );
        assert_eq!(load(&p), None);
        let s = Saved {
            location: "http://127.0.0.1:5000/v2/me/x/blobs/uploads/u?_state=a".into(),
            offset: 8 << 20,
        };
        save(&p, &s).unwrap();
        assert_eq!(load(&p), Some(s));
        std::fs::write(&p, "not a url\n12\n").unwrap();
        assert_eq!(load(&p), None);
        std::fs::write(&p, "http://h/u\nminus\n").unwrap();
        assert_eq!(load(&p), None);
        forget(&p);
        assert!(!p.exists());
        assert_eq!(file(None, "r", "me/x", &d), None);
    }
}
