//! A blob directory implementing both archive traits (tests and tools).

use std::io::{self, Read, Write};

use super::{BlobSink, BlobSource};
use crate::digest::{Digest, Hasher};

/// A [`BlobSource`] + [`BlobSink`] over a plain directory of `sha256/<hex>` files (an OCI
/// layout's `blobs/`): for tests and tools. Writes are temp file + rename, verified.
pub struct DirBlobs {
    pub dir: std::path::PathBuf,
}

impl DirBlobs {
    fn path(&self, d: &Digest) -> std::path::PathBuf {
        self.dir.join("sha256").join(d.hex())
    }
}

impl BlobSource for DirBlobs {
    fn open_blob(&self, digest: &Digest) -> io::Result<(Box<dyn Read + '_>, u64)> {
        let f = std::fs::File::open(self.path(digest))?;
        let len = f.metadata()?.len();
        Ok((Box::new(f), len))
    }
}

impl BlobSink for DirBlobs {
    fn put_blob(
        &mut self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> io::Result<(Digest, u64)> {
        let dir = self.dir.join("sha256");
        std::fs::create_dir_all(&dir)?;
        let (mut f, tmp) = tempfile_in(&dir)?;
        let res = (|| {
            let mut h = Hasher::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                h.update(&buf[..n]);
                f.write_all(&buf[..n])?;
            }
            let len = h.len();
            let d = h.finish();
            if let Some(e) = expected {
                if *e != d {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("expected {e}, content hashes to {d}"),
                    ));
                }
            }
            f.sync_all()?;
            std::fs::rename(&tmp, self.path(&d))?;
            Ok((d, len))
        })();
        if res.is_err() {
            // The temp file is ours and unreferenced; failing to remove it leaves debris only.
            let _ignored = std::fs::remove_file(&tmp);
        }
        res
    }
}

fn tempfile_in(dir: &std::path::Path) -> io::Result<(std::fs::File, std::path::PathBuf)> {
    for i in 0..1000u32 {
        let p = dir.join(format!(".tmp-{}-{}", std::process::id(), i));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => return Ok((f, p)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "no free temp name in {}",
        dir.display()
    )))
}
