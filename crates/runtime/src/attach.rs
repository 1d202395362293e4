//! The attach socket of a detached container with a terminal (`irun -dit`):
//! `<live dir>/attach.sock`, served by its monitor. A client sends frames: one byte kind
//! (0 input, 1 resize), four bytes big-endian length, the payload (input bytes, at most
//! [`MAX_FRAME`]; a resize is rows and columns, two big-endian u16). The monitor sends
//! the terminal's output as it comes, raw, and closes the connection when the
//! container ends. Detaching is the client's business (ctrl-p ctrl-q): it just closes.
//! Never: touches terminals or processes.

use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::record::{live_dir, ContainerId, ContainerRecord, RecordError};

/// The socket's file name in the live dir.
pub const SOCKET: &str = "attach.sock";
/// The largest payload of one frame.
pub const MAX_FRAME: usize = 64 * 1024;

const INPUT: u8 = 0;
const RESIZE: u8 = 1;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Bytes for the terminal's input.
    Input(Vec<u8>),
    /// The client's terminal size.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
}

/// Failures of the attach socket.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// A frame of an unknown kind or over the size limit.
    #[error("bad attach frame (kind {kind}, {len} bytes)")]
    BadFrame {
        /// Its kind byte.
        kind: u8,
        /// Its announced length.
        len: usize,
    },
    /// The live dir is unknown.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The socket could not be reached.
    #[error("connect to the container's terminal `{path}` (is it running with -t?)")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The frame as bytes (input over [`MAX_FRAME`] is the caller's to split).
pub fn encode(f: &Frame) -> Vec<u8> {
    let (kind, payload) = match f {
        Frame::Input(b) => (INPUT, b.clone()),
        Frame::Resize { rows, cols } => {
            let mut p = rows.to_be_bytes().to_vec();
            p.extend_from_slice(&cols.to_be_bytes());
            (RESIZE, p)
        }
    };
    let mut out = vec![kind];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Frames out of a byte stream that arrives in pieces.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Add received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, AttachError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let kind = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        let ok = match kind {
            INPUT => len <= MAX_FRAME,
            RESIZE => len == 4,
            _ => false,
        };
        if !ok {
            return Err(AttachError::BadFrame { kind, len });
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let payload: Vec<u8> = self.buf.drain(..5 + len).skip(5).collect();
        Ok(Some(match kind {
            INPUT => Frame::Input(payload),
            _ => Frame::Resize {
                rows: u16::from_be_bytes([payload[0], payload[1]]),
                cols: u16::from_be_bytes([payload[2], payload[3]]),
            },
        }))
    }
}

/// The socket path of container `id` in our own runtime dir.
pub fn socket_path(id: &ContainerId) -> Result<PathBuf, AttachError> {
    Ok(live_dir(id)?.join(SOCKET))
}

/// Connect to the terminal of the container of `rec`: at the socket its record names
/// (its monitor's runtime dir), else in ours.
pub fn connect(rec: &ContainerRecord) -> Result<UnixStream, AttachError> {
    let path = match (&rec.attach_socket, ContainerId::parse(&rec.id)) {
        (Some(p), _) => p.clone(),
        (None, Some(id)) => socket_path(&id)?,
        (None, None) => return Err(RecordError::NotFound(rec.id.clone()).into()),
    };
    via_dir(&path, |short| UnixStream::connect(short))
        .map_err(|source| AttachError::Connect { path, source })
}

/// Listen on the socket `path` (one left by an earlier run is replaced).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    // Ignoring failure: there usually is none; bind reports what matters.
    let _ = std::fs::remove_file(path);
    via_dir(path, |short| UnixListener::bind(short))
}

/// Call `f` with a short name for `path`: socket addresses hold at most 107 bytes, and
/// a runtime dir can be deep; `/proc/self/fd/N/NAME` through an fd of the socket's dir
/// always fits.
fn via_dir<T>(path: &Path, f: impl FnOnce(&Path) -> std::io::Result<T>) -> std::io::Result<T> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return f(path);
    };
    let d = std::fs::File::open(dir)?;
    let short = Path::new("/proc/self/fd")
        .join(d.as_raw_fd().to_string())
        .join(name);
    f(&short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_pieces() {
        let mut bytes = encode(&Frame::Input(b"ls\n".to_vec()));
        bytes.extend(encode(&Frame::Resize {
            rows: 40,
            cols: 120,
        }));
        let mut d = Decoder::default();
        let mut got = vec![];
        for b in bytes.chunks(3) {
            d.push(b);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            [
                Frame::Input(b"ls\n".to_vec()),
                Frame::Resize {
                    rows: 40,
                    cols: 120
                }
            ]
        );
    }

    #[test]
    fn oversized_and_unknown_frames_are_refused() {
        let mut d = Decoder::default();
        d.push(&[0, 0xff, 0xff, 0xff, 0xff]);
        assert!(d.next_frame().is_err());
        let mut d = Decoder::default();
        d.push(&[7, 0, 0, 0, 0]);
        assert!(d.next_frame().is_err());
    }
}
