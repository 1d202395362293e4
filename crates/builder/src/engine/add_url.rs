//! ADD of an `http(s)://` URL: the download into a temp dir that then serves as the
//! step's context (docs/semantics.md items 94, 96). The file is named after the URL
//! path's last segment, gets mode 0600 and the `Last-Modified` time; `--checksum` is
//! verified. The transfer has the registry client's bounds: a server that stops
//! sending, or trickles under the rate floor, fails the step naming the host.

use std::cell::Cell;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::commit::HashWriter;
use crate::fsview;

/// An ADD URL could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("invalid checksum digest format: {0}")]
    ChecksumFormat(String),
    #[error("unsupported digest algorithm: {0}")]
    DigestAlgorithm(String),
    #[error("download {url}")]
    Agent {
        url: String,
        #[source]
        source: imago_registry::RegistryError,
    },
    #[error("download {url}")]
    Request {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("download {url}")]
    Limits {
        url: String,
        #[source]
        source: imago_registry::LimitsError,
    },
    #[error("download {url}: {host} {source}")]
    Stalled {
        url: String,
        host: String,
        source: imago_registry::stall::Stall,
    },
    #[error("download {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("download {url}: digest mismatch: expected {expected}, got {got}")]
    Digest {
        url: String,
        expected: String,
        got: String,
    },
    #[error("download {url}: {what} `{path}`")]
    Write {
        url: String,
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// True for the sources ADD downloads.
pub(super) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// `--checksum=sha256:<hex>` as the digest string a download is compared with.
fn wanted_digest(checksum: Option<&str>) -> Result<Option<String>, DownloadError> {
    match checksum.map(|c| (c, c.split_once(':'))) {
        None => Ok(None),
        Some((c, None)) => Err(DownloadError::ChecksumFormat(c.to_string())),
        Some((_, Some(("sha256", hex)))) => {
            Ok(Some(format!("sha256:{}", hex.to_ascii_lowercase())))
        }
        Some((_, Some((alg, _)))) => Err(DownloadError::DigestAlgorithm(alg.to_string())),
    }
}

/// The file name a download gets: the URL path's last segment, else `download`.
fn file_name(url: &str) -> &str {
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let path = rest.split(['?', '#']).next().unwrap_or(rest);
    path.rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && !path.ends_with('/') && path.contains('/'))
        .unwrap_or("download")
}

/// Download `url` into `dir`; returns the file's name.
pub(super) fn fetch_url(
    url: &str,
    dir: &Path,
    checksum: Option<&str>,
) -> Result<String, DownloadError> {
    let want = wanted_digest(checksum)?;
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let name = file_name(url);
    let limits =
        imago_registry::TransferLimits::from_env().map_err(|source| DownloadError::Limits {
            url: url.to_string(),
            source,
        })?;
    let transport = imago_registry::TransportOptions {
        limits,
        ..Default::default()
    };
    let agent = imago_registry::transport::agent_for(authority, &transport).map_err(|source| {
        DownloadError::Agent {
            url: url.to_string(),
            source,
        }
    })?;
    let stalled = |source| DownloadError::Stalled {
        url: url.to_string(),
        host: authority.to_string(),
        source,
    };
    let resp =
        agent.get(url).call().map_err(|e| {
            match imago_registry::stall::Stall::from_ureq(&e, &limits, false) {
                Some(stall) => stalled(stall),
                None => DownloadError::Request {
                    url: url.to_string(),
                    source: Box::new(e),
                },
            }
        })?;
    if !resp.status().is_success() {
        return Err(DownloadError::Status {
            url: url.to_string(),
            status: resp.status().as_u16(),
        });
    }
    let modified = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| jiff::fmt::rfc2822::parse(t).ok())
        .map(|z| z.timestamp().as_second());
    let file = dir.join(name);
    let werr = |what: &'static str| {
        let (url, path) = (url.to_string(), file.clone());
        move |source| DownloadError::Write {
            url,
            what,
            path,
            source,
        }
    };
    let mut out = std::fs::File::create(&file).map_err(werr("create"))?;
    let mut hw = HashWriter::new(&mut out);
    let verdict = Cell::new(None);
    let mut body =
        imago_registry::stall::Watch::new(resp.into_body().into_reader(), &limits, false, &verdict);
    if let Err(e) = std::io::copy(&mut body, &mut hw) {
        return Err(match verdict.take() {
            Some(stall) => stalled(stall),
            None => werr("download into")(e),
        });
    }
    let got = hw.finish().1.to_string();
    drop(out);
    if let Some(expected) = want {
        if expected != got {
            return Err(DownloadError::Digest {
                url: url.to_string(),
                expected,
                got,
            });
        }
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
        .map_err(werr("chmod"))?;
    fsview::set_mtime(&file, modified.unwrap_or(0)).map_err(werr("set mtime"))?;
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_checksums() {
        assert_eq!(file_name("https://h/a/file.txt?x=1"), "file.txt");
        assert_eq!(file_name("https://h/dir/"), "download");
        assert_eq!(file_name("https://h"), "download");
        assert_eq!(
            wanted_digest(Some("sha256:AB")).unwrap(),
            Some("sha256:ab".into())
        );
        assert!(matches!(
            wanted_digest(Some("md5:0")),
            Err(DownloadError::DigestAlgorithm(_))
        ));
        assert!(matches!(
            wanted_digest(Some("nocolon")),
            Err(DownloadError::ChecksumFormat(_))
        ));
    }
}
