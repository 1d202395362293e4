//! Parallel transfers: one work queue served by up to `jobs` scoped threads, shared by
//! pull (blob downloads) and push (blob uploads). The first error stops the other
//! threads from taking more work and is the result.
//!
//! Never: knows what a job does (pull.rs, push.rs), or retries one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Run `job` on each of `items`, taken in order, at most `jobs` at a time. Returns the
/// results in the order the jobs finished, or the first error.
pub fn run_parallel<T, R, E>(
    items: &[T],
    jobs: usize,
    job: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<R>> = Mutex::new(Vec::with_capacity(items.len()));
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    // A panic in a job leaves plain data behind the locks: take it as it is.
    let failed = || {
        first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    };
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1).min(items.len()) {
            s.spawn(|| loop {
                if failed() {
                    return;
                }
                let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                match job(item) {
                    Ok(r) => done.lock().unwrap_or_else(|p| p.into_inner()).push(r),
                    Err(e) => {
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(done.into_inner().unwrap_or_else(|p| p.into_inner())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_item_and_stops_at_the_first_error() {
        let items: Vec<u32> = (0..20).collect();
        let mut out = run_parallel(&items, 4, |i| Ok::<_, String>(i * 2)).unwrap();
        out.sort_unstable();
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(run_parallel(&[] as &[u32], 4, |_| Err::<(), _>("never"))
            .unwrap()
            .is_empty());
        let ran = AtomicUsize::new(0);
        let e = run_parallel(&items, 1, |i| {
            ran.fetch_add(1, Ordering::Relaxed);
            if *i == 3 {
                Err(format!("item {i}"))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(e, "item 3");
        assert_eq!(
            ran.load(Ordering::Relaxed),
            4,
            "no work is taken after an error"
        );
    }
}
