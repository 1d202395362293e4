//! Copying a stream into a sink while hashing it: the one loop behind `put_blob` and
//! partial downloads. Once a stream is past [`THREAD_AFTER`] bytes, and while the
//! process has a spare core for it (a single large layer, not four at once), the hash
//! moves to a thread of its own fed through a bounded channel of buffers, so reading (a
//! socket), writing (the file) and SHA-256 overlap instead of taking turns on one core.
//!
//! The hasher always ends up having hashed exactly the bytes the sink accepted, except
//! after a sink error (then the caller starts over). At most [`BUFFERS`] × [`BUF`] bytes
//! are in flight.
//!
//! Never: opens, syncs or names files (the callers do), or decides what a short or long
//! stream means (it only refuses to go past the limit it is given).

use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::OnceLock;

use imago_oci::Hasher;

/// Bytes read before a buffer goes to the sink and the hasher.
pub(crate) const BUF: usize = 1 << 20;

/// Buffers in flight once the hash has its own thread.
const BUFFERS: usize = 4;

/// Bytes hashed inline before the hash moves to its own thread: a small blob (a config,
/// a manifest) is not worth a thread.
const THREAD_AFTER: u64 = 4 << 20;

/// Copies running in this process: the hash gets a thread of its own only while each
/// copy can have two cores. With more copies than that (a pull of several layers at
/// once) the cores are busy already and the hand-over between threads only costs.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

struct Active;

/// The cores this process may use, asked once: the answer reads cgroup files, and a copy
/// asks once per buffer until its hash has a thread.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl Active {
    fn enter() -> Self {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        Active
    }

    fn spare_core() -> bool {
        ACTIVE.load(Ordering::Relaxed) * 2 <= cores()
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a copy stopped before the source's EOF.
#[derive(Debug)]
pub(crate) enum Stop<E> {
    /// The source failed; every byte read before it was written and hashed.
    Read(io::Error),
    /// The sink failed; the hasher no longer matches what the sink holds.
    Sink(E),
    /// The source has more than `limit` bytes: this many at least. The bytes read
    /// before the read that went past the limit were written and hashed.
    TooLong(u64),
}

/// Copy `reader` into `sink` until EOF, updating `hasher` with every byte the sink took.
/// `limit` bounds the total length, counting what `hasher` had hashed before.
pub(crate) fn copy_hashed<E>(
    reader: &mut dyn Read,
    hasher: &mut Hasher,
    limit: u64,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), Stop<E>> {
    let _active = Active::enter();
    copy_with(reader, hasher, limit, sink, Active::spare_core)
}

/// [`copy_hashed`], asking `may_thread` whether the hash may have a thread of its own.
fn copy_with<E>(
    reader: &mut dyn Read,
    hasher: &mut Hasher,
    limit: u64,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    may_thread: fn() -> bool,
) -> Result<(), Stop<E>> {
    let mut total = hasher.len();
    let mut local = std::mem::take(hasher);
    std::thread::scope(|s| {
        let mut buf = vec![0u8; BUF];
        // Inline until THREAD_AFTER: read, write, hash, one buffer.
        let end = loop {
            let (filled, end) = fill(reader, &mut buf, total, limit);
            if filled > 0 {
                if let Err(e) = sink(&buf[..filled]) {
                    break Some(Err(Stop::Sink(e)));
                }
                local.update(&buf[..filled]);
                total += filled as u64;
            }
            if end.is_some() {
                break end;
            }
            if total >= THREAD_AFTER && may_thread() {
                break None;
            }
        };
        if let Some(end) = end {
            *hasher = local;
            return end;
        }
        // Threaded: this thread reads and writes, the other hashes; buffers go round.
        let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(BUFFERS - 1);
        let (empty_tx, empty_rx) = channel::<Vec<u8>>();
        let mut h = local;
        let worker = s.spawn(move || {
            for (b, n) in full_rx {
                h.update(&b[..n]);
                // The reading side may be gone already; the buffer is then just freed.
                let _ = empty_tx.send(b);
            }
            h
        });
        let mut allocated = 1;
        let mut next = Some(buf);
        let end = loop {
            let mut buf = match next.take() {
                Some(b) => b,
                None => match empty_rx.try_recv() {
                    Ok(b) => b,
                    Err(_) if allocated < BUFFERS => {
                        allocated += 1;
                        vec![0u8; BUF]
                    }
                    Err(_) => match empty_rx.recv() {
                        Ok(b) => b,
                        // The hasher is gone (it panicked): the join below says why.
                        Err(_) => break Ok(()),
                    },
                },
            };
            let (filled, end) = fill(reader, &mut buf, total, limit);
            if filled > 0 {
                if let Err(e) = sink(&buf[..filled]) {
                    break Err(Stop::Sink(e));
                }
                total += filled as u64;
                if full_tx.send((buf, filled)).is_err() {
                    break Ok(());
                }
            }
            if let Some(end) = end {
                break end;
            }
        };
        drop(full_tx);
        *hasher = worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        end
    })
}

/// Fill `buf` from `reader`: the bytes read, and why it stopped short (`None`: full).
/// A read that would take the total past `limit` is not counted.
fn fill<E>(
    reader: &mut dyn Read,
    buf: &mut [u8],
    total: u64,
    limit: u64,
) -> (usize, Option<Result<(), Stop<E>>>) {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return (filled, Some(Ok(()))),
            Ok(n) => {
                let now = total.saturating_add((filled + n) as u64);
                if now > limit {
                    return (filled, Some(Err(Stop::TooLong(now))));
                }
                filled += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(Err(Stop::Read(e)))),
        }
    }
    (filled, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imago_oci::Digest;

    /// Gives `data` in reads of `step` bytes, then fails when `cut`.
    struct Src {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        cut: bool,
    }

    impl Read for Src {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return if self.cut {
                    Err(io::Error::from(io::ErrorKind::ConnectionReset))
                } else {
                    Ok(0)
                };
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn src(len: usize, step: usize, cut: bool) -> Src {
        let data = (0..len).map(|i| (i * 7 + i / 4096) as u8).collect();
        Src {
            data,
            pos: 0,
            step,
            cut,
        }
    }

    /// Copy with the hash threaded once past THREAD_AFTER (the path under test).
    fn run(s: &mut Src, limit: u64) -> (Vec<u8>, Hasher, Result<(), Stop<io::Error>>) {
        let mut out = Vec::new();
        let mut h = Hasher::new();
        let r = copy_with(
            s,
            &mut h,
            limit,
            &mut |b: &[u8]| {
                out.extend_from_slice(b);
                Ok::<_, io::Error>(())
            },
            || true,
        );
        (out, h, r)
    }

    #[test]
    fn small_and_large_streams_hash_what_was_written() {
        // Inline only, exactly at the switch, and far past it with odd read sizes.
        for (len, step) in [
            (0, 1),
            (10, 3),
            (THREAD_AFTER as usize, BUF),
            (THREAD_AFTER as usize * 3 + 12345, 65537),
        ] {
            let mut s = src(len, step, false);
            let (out, h, r) = run(&mut s, u64::MAX);
            assert!(r.is_ok(), "{len}");
            assert_eq!(out, s.data, "{len}");
            assert_eq!(h.len(), len as u64);
            assert_eq!(h.finish(), Digest::of(&s.data), "{len}");
            // The inline path (several copies at once) gives the same.
            let mut s = src(len, step, false);
            let mut h = Hasher::new();
            let mut n = 0u64;
            copy_hashed(&mut s, &mut h, u64::MAX, &mut |b: &[u8]| {
                n += b.len() as u64;
                Ok::<_, io::Error>(())
            })
            .unwrap();
            assert_eq!((n, h.finish()), (len as u64, Digest::of(&s.data)));
        }
    }

    #[test]
    fn a_cut_stream_keeps_and_hashes_what_arrived() {
        let len = THREAD_AFTER as usize + 3 * BUF + 999;
        let mut s = src(len, 100_000, true);
        let (out, h, r) = run(&mut s, u64::MAX);
        assert!(matches!(r, Err(Stop::Read(_))), "{r:?}");
        assert_eq!(out.len(), len);
        assert_eq!(h.finish(), Digest::of(&s.data));
    }

    #[test]
    fn the_limit_is_enforced_counting_what_was_hashed_before() {
        let len = THREAD_AFTER as usize + BUF + 5;
        let mut s = src(len, 4096, false);
        let (out, h, r) = run(&mut s, len as u64 - 1);
        assert!(
            matches!(r, Err(Stop::TooLong(n)) if n > len as u64 - 1),
            "{r:?}"
        );
        assert_eq!(h.len(), out.len() as u64);
        assert!(out.len() < len);
        assert_eq!(h.finish(), Digest::of(&out));

        // Bytes hashed before count towards the limit.
        let mut h = Hasher::new();
        h.update(b"abc");
        let r = copy_hashed(&mut &b"defg"[..], &mut h, 6, &mut |_: &[u8]| {
            Ok::<_, io::Error>(())
        });
        assert!(matches!(r, Err(Stop::TooLong(7))), "{r:?}");
    }

    #[test]
    fn a_sink_error_stops_the_copy() {
        let mut s = src(THREAD_AFTER as usize + 4 * BUF, BUF, false);
        let mut h = Hasher::new();
        let mut calls = 0;
        let mut sink = |_: &[u8]| {
            calls += 1;
            if calls == 6 {
                Err("disk full")
            } else {
                Ok(())
            }
        };
        let r = copy_with(&mut s, &mut h, u64::MAX, &mut sink, || true);
        assert!(matches!(r, Err(Stop::Sink("disk full"))), "{r:?}");
        assert_eq!(calls, 6);
    }
}
