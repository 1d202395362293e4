//! A detached container's output log, docker's json-file shape: one JSON object per line
//! of output, `{"log":"hello\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`,
//! in `<store>/containers/<id>/<id>-json.log`. A line longer than [`MAX_LINE`] bytes is
//! split into pieces (all but the last without the trailing newline, as docker marks a
//! partial message); output that ends without a newline is written as such a piece. When
//! the file passes [`MAX_FILE`] bytes it is renamed to `…-json.log.1` (replacing the
//! older one) and a new file begins, so a chatty container uses at most twice that.
//! Invalid UTF-8 is replaced (U+FFFD), as docker's encoder does.
//! Never: decides when to read or which container (monitor.rs, the bins).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The longest piece of a line written as one entry (docker's 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;
/// Size at which the log file is rotated.
pub const MAX_FILE: u64 = 64 * 1024 * 1024;

/// Which stream a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The command's stdout (everything, with a terminal).
    Stdout,
    /// The command's stderr.
    Stderr,
}

/// One line of the log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The text, with its newline unless it is a partial piece.
    pub log: String,
    /// stdout or stderr.
    pub stream: Stream,
    /// When it was read, RFC 3339 with nanoseconds.
    pub time: String,
}

/// The log file of the container whose dir is `dir`.
pub fn path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

fn rotated(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

/// Writes output into the log, line by line, per stream.
pub struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
    partial: [Vec<u8>; 2],
}

fn slot(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl Writer {
    /// Append to the log at `path` (created when missing).
    pub fn open(path: &Path) -> std::io::Result<Writer> {
        Writer::with_max(path, MAX_FILE)
    }

    fn with_max(path: &Path, max: u64) -> std::io::Result<Writer> {
        use std::os::unix::fs::OpenOptionsExt;
        // Private, as the container's output may be.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            size,
            max,
            partial: [vec![], vec![]],
        })
    }

    /// Output read from `stream`: every complete line (and every [`MAX_LINE`] piece) is
    /// written; the rest waits for more.
    pub fn write(&mut self, stream: Stream, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let buf = &mut self.partial[slot(stream)];
            let room = MAX_LINE - buf.len();
            let take = data[..data.len().min(room)]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + 1);
            match take {
                Some(n) => {
                    buf.extend_from_slice(&data[..n]);
                    data = &data[n..];
                }
                None => {
                    let n = data.len().min(room);
                    buf.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if buf.len() < MAX_LINE {
                        break;
                    }
                }
            }
            let piece = std::mem::take(&mut self.partial[slot(stream)]);
            self.entry(stream, &piece)?;
        }
        Ok(())
    }

    /// Write what waits for a newline (the stream ended).
    pub fn flush_partial(&mut self) -> std::io::Result<()> {
        for s in [Stream::Stdout, Stream::Stderr] {
            let piece = std::mem::take(&mut self.partial[slot(s)]);
            if !piece.is_empty() {
                self.entry(s, &piece)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, stream: Stream, piece: &[u8]) -> std::io::Result<()> {
        let e = Entry {
            log: String::from_utf8_lossy(piece).into_owned(),
            stream,
            time: jiff::Timestamp::now().to_string(),
        };
        let mut line = serde_json::to_vec(&e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max {
            std::fs::rename(&self.path, rotated(&self.path))?;
            *self = Writer {
                partial: std::mem::take(&mut self.partial),
                ..Writer::with_max(&self.path, self.max)?
            };
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }
}

/// Reads entries in order, from the rotated file first, and on from where it stopped
/// (for following a log that grows).
pub struct Reader {
    path: PathBuf,
    current: Option<BufReader<File>>,
    pending: Vec<u8>,
    /// Inside a line longer than [`MAX_ENTRY`]: dropped up to its newline.
    skipping: bool,
}

/// The longest log line read (the writer's are at most ~100 KiB: a 16 KiB piece, JSON
/// escaped); a longer one is not ours and is skipped.
const MAX_ENTRY: usize = 1024 * 1024;

impl Reader {
    /// Read the log at `path` from its beginning (the rotated part first).
    pub fn open(path: &Path) -> Reader {
        let older = File::open(rotated(path)).ok().map(BufReader::new);
        Reader {
            path: path.to_path_buf(),
            current: older,
            pending: vec![],
            skipping: false,
        }
    }

    /// Read only what is written to the log at `path` from now on.
    pub fn open_at_end(path: &Path) -> Reader {
        use std::io::{Seek, SeekFrom};
        let current = File::open(path).ok().and_then(|mut f| {
            f.seek(SeekFrom::End(0)).ok()?;
            Some(BufReader::new(f))
        });
        Reader {
            path: path.to_path_buf(),
            current,
            pending: vec![],
            skipping: false,
        }
    }

    /// The next complete entry, or `None` at the end for now. A line that does not
    /// parse (a torn write, a foreign line) is skipped.
    pub fn next_entry(&mut self) -> Option<Entry> {
        loop {
            if self.current.is_none() {
                self.current = Some(BufReader::new(File::open(&self.path).ok()?));
            }
            let r = self.current.as_mut()?;
            let room = (MAX_ENTRY + 1).saturating_sub(self.pending.len()) as u64;
            let n = r
                .by_ref()
                .take(room)
                .read_until(b'\n', &mut self.pending)
                .ok()?;
            let complete = self.pending.ends_with(b"\n");
            if !complete && self.pending.len() > MAX_ENTRY {
                self.pending.clear();
                self.skipping = true;
                continue;
            }
            if n == 0 || !complete {
                if self.at_rotated_end() {
                    continue;
                }
                return None;
            }
            let line = std::mem::take(&mut self.pending);
            if std::mem::take(&mut self.skipping) {
                continue;
            }
            if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
                return Some(e);
            }
        }
    }

    /// At the end of the rotated part: go on with the current file.
    fn at_rotated_end(&mut self) -> bool {
        let on_rotated = self
            .current
            .as_ref()
            .and_then(|r| r.get_ref().metadata().ok())
            .zip(std::fs::metadata(&self.path).ok())
            .is_some_and(|(a, b)| {
                use std::os::unix::fs::MetadataExt;
                a.ino() != b.ino()
            });
        if on_rotated {
            self.current = None;
            self.pending.clear();
        }
        on_rotated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("imago-log-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join("c-json.log")
    }

    fn all(p: &Path) -> Vec<Entry> {
        let mut r = Reader::open(p);
        std::iter::from_fn(|| r.next_entry()).collect()
    }

    #[test]
    fn lines_streams_and_partials() {
        let p = tmp("lines");
        let mut w = Writer::open(&p).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"lo\nwor").unwrap();
        w.flush_partial().unwrap();
        let e = all(&p);
        let got: Vec<(&str, Stream)> = e.iter().map(|e| (e.log.as_str(), e.stream)).collect();
        assert_eq!(
            got,
            [
                ("oops\n", Stream::Stderr),
                ("hello\n", Stream::Stdout),
                ("wor", Stream::Stdout)
            ]
        );
        assert!(e[0].time.parse::<jiff::Timestamp>().is_ok(), "{:?}", e[0]);
        let raw = std::fs::read_to_string(&p).unwrap();
        assert!(
            raw.starts_with(r#"{"log":"oops\n","stream":"stderr","time":""#),
            "{raw}"
        );
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn long_lines_are_split_and_the_file_rotates() {
        let p = tmp("long");
        let mut w = Writer::with_max(&p, 2 * MAX_LINE as u64).unwrap();
        let mut long = vec![b'x'; MAX_LINE * 2 + 10];
        long.push(b'\n');
        w.write(Stream::Stdout, &long).unwrap();
        w.write(Stream::Stdout, b"next\n").unwrap();
        let e = all(&p);
        assert_eq!(
            e.len(),
            4,
            "{:?}",
            e.iter().map(|e| e.log.len()).collect::<Vec<_>>()
        );
        assert_eq!(e[0].log.len(), MAX_LINE);
        assert!(!e[1].log.ends_with('\n'));
        assert_eq!(e[2].log.len(), 11);
        assert_eq!(e[3].log, "next\n");
        assert!(rotated(&p).exists(), "rotated before the third piece");
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn an_oversized_foreign_line_is_skipped() {
        let p = tmp("huge");
        let mut junk = vec![b'x'; MAX_ENTRY * 2];
        junk.push(b'\n');
        std::fs::write(&p, &junk).unwrap();
        let mut w = Writer::open(&p).unwrap();
        w.write(Stream::Stdout, b"after\n").unwrap();
        let e = all(&p);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].log, "after\n");
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_reader_follows_a_growing_file() {
        let p = tmp("follow");
        let mut w = Writer::open(&p).unwrap();
        let mut r = Reader::open(&p);
        w.write(Stream::Stdout, b"a\n").unwrap();
        assert_eq!(r.next_entry().unwrap().log, "a\n");
        assert!(r.next_entry().is_none());
        w.write(Stream::Stdout, b"b\n").unwrap();
        assert_eq!(r.next_entry().unwrap().log, "b\n");
        let mut end = Reader::open_at_end(&p);
        assert!(end.next_entry().is_none());
        w.write(Stream::Stdout, b"c\n").unwrap();
        assert_eq!(end.next_entry().unwrap().log, "c\n");
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }
}
