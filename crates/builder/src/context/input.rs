//! The context as the user gives it: a directory, or `-` for a tar on stdin (extracted
//! into a temp dir of the store by [`crate::archive::extract_context`], removed with the
//! [`BuildContext`]); then the Dockerfile and the ignore file that go with it, found as
//! `docker build` finds them.
//!
//! Never: reads stdin for anything but the one input that `-` names.

use std::io::Read;
use std::path::{Path, PathBuf};

use imago_dockerfile::{ignore_file_candidates, DockerIgnore};
use imago_store::Store;

use crate::archive::{self, ArchiveError};
use crate::temp::TempPath;

/// The context, the Dockerfile or the ignore file could not be had.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("read the Dockerfile `{0}`")]
    Dockerfile(PathBuf, #[source] std::io::Error),
    #[error("no Dockerfile or Containerfile in `{0}` (use -f FILE)")]
    NoDockerfile(PathBuf),
    #[error("the build context `{0}` is not a directory")]
    NoContext(PathBuf),
    #[error("make the build context path `{0}` absolute")]
    ContextPath(PathBuf, #[source] std::io::Error),
    #[error("make the build context directory `{0}`")]
    ContextDir(PathBuf, #[source] std::io::Error),
    #[error("extract the build context tar from stdin")]
    ContextTar(#[source] ArchiveError),
    #[error("`-f -` and a context on stdin (`-`) cannot both read stdin")]
    BothStdin,
    #[error("read `{0}`")]
    Ignore(PathBuf, #[source] std::io::Error),
    #[error("{0}")]
    IgnoreParse(String),
}

/// The build context directory, absolute; a context read from stdin is removed when
/// this is dropped.
#[derive(Debug)]
pub struct BuildContext {
    dir: PathBuf,
    from_stdin: bool,
    _temp: Option<TempPath>,
}

/// A Dockerfile: its text and the name messages use.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub text: String,
    pub name: String,
    /// Where its `<name>.dockerignore` would be (None: read from stdin).
    path: PathBuf,
}

impl BuildContext {
    /// A context directory as given (any context but `-`); needs no store.
    pub fn open_dir(context: &str) -> Result<Self, InputError> {
        let d = PathBuf::from(context);
        if !d.is_dir() {
            return Err(InputError::NoContext(d));
        }
        let dir = std::path::absolute(&d).map_err(|e| InputError::ContextPath(d.clone(), e))?;
        Ok(BuildContext {
            dir,
            from_stdin: false,
            _temp: None,
        })
    }

    /// The context `-`: a tar on stdin, unpacked into a temp dir of `store` (then `file`
    /// must not be `-` too).
    pub fn open_stdin(store: &Store, file: Option<&str>) -> Result<Self, InputError> {
        if file == Some("-") {
            return Err(InputError::BothStdin);
        }
        let temp = TempPath::new(store.temp_path("context"));
        let dir = temp.path().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| InputError::ContextDir(dir.clone(), e))?;
        let tar = TempPath::new(store.temp_path("context-tar"));
        archive::extract_context(std::io::stdin().lock(), tar.path(), &dir)
            .map_err(InputError::ContextTar)?;
        drop(tar);
        let dir = std::path::absolute(&dir).map_err(|e| InputError::ContextPath(dir.clone(), e))?;
        Ok(BuildContext {
            dir,
            from_stdin: true,
            _temp: Some(temp),
        })
    }

    /// The directory, absolute (RUN bind mounts are made from another working dir).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The Dockerfile: `-f -` reads stdin; `-f FILE` is relative to the current
    /// directory (to the context when the context came from stdin); else the context's
    /// `Dockerfile`, then `Containerfile`.
    pub fn dockerfile(&self, file: Option<&str>) -> Result<Dockerfile, InputError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| InputError::Dockerfile(p.to_path_buf(), e))
        };
        match file {
            Some("-") => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| InputError::Dockerfile("-".into(), e))?;
                let name = "Dockerfile".to_string();
                let path = self.dir.join(&name);
                Ok(Dockerfile { text, name, path })
            }
            Some(f) => {
                let path = match self.from_stdin {
                    true => self.dir.join(f),
                    false => PathBuf::from(f),
                };
                let text = read(&path)?;
                Ok(Dockerfile {
                    text,
                    name: f.to_string(),
                    path,
                })
            }
            None => {
                let path = (["Dockerfile", "Containerfile"].iter())
                    .map(|n| self.dir.join(n))
                    .find(|p| p.is_file())
                    .ok_or_else(|| InputError::NoDockerfile(self.dir.clone()))?;
                let name = (path.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok(Dockerfile {
                    text: read(&path)?,
                    name,
                    path,
                })
            }
        }
    }

    /// The ignore file in effect: `<Dockerfile>.dockerignore` next to the Dockerfile
    /// wins over the context's `.containerignore`, which wins over its `.dockerignore`.
    pub fn ignore(&self, dockerfile: &Dockerfile) -> Result<Option<DockerIgnore>, InputError> {
        let [next_to, podmans, dockers] =
            ignore_file_candidates(&dockerfile.path.to_string_lossy());
        let candidates = [
            PathBuf::from(next_to),
            self.dir.join(podmans),
            self.dir.join(dockers),
        ];
        let Some(p) = candidates.iter().find(|p| p.is_file()) else {
            return Ok(None);
        };
        let t = std::fs::read_to_string(p).map_err(|e| InputError::Ignore(p.clone(), e))?;
        let di = DockerIgnore::parse(&t, &p.to_string_lossy())
            .map_err(|e| InputError::IgnoreParse(e.render()))?;
        Ok(Some(di))
    }
}
