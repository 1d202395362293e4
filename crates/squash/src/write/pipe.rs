//! An in-process pipe between a thread that writes a tar stream and the squashfs
//! writer that reads it: bounded (a few chunks in flight), closed by dropping either
//! end (the other then sees EOF or `BrokenPipe`).
//! Never: buffers more than [`CHUNKS`] × [`CHUNK`] bytes.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes a chunk carries.
pub const CHUNK: usize = 256 << 10;
/// Chunks in flight.
pub const CHUNKS: usize = 8;

/// The writing end.
pub struct PipeWriter {
    tx: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

/// The reading end.
pub struct PipeReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

/// A connected pair.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(CHUNKS);
    (
        PipeWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        PipeReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        },
    )
}

impl Write for PipeWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() == CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(chunk)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(c) => (self.cur, self.pos) = (c, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_and_a_dropped_reader_stops_the_writer() {
        let (mut w, mut r) = pipe();
        let t = std::thread::spawn(move || {
            for i in 0..100_000u32 {
                w.write_all(&i.to_le_bytes()).unwrap();
            }
            w.flush().unwrap();
        });
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        t.join().unwrap();
        assert_eq!(all.len(), 400_000);
        assert_eq!(&all[399_996..], &99_999u32.to_le_bytes());
        let (mut w, r) = pipe();
        drop(r);
        assert!(w.write_all(&vec![0u8; CHUNK]).is_err());
    }
}
