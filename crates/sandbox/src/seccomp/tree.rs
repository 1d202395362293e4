//! The syscall-number dispatch of a filter as a binary search over ranges, not a list.
//! Owns: laying out `(syscall number, body)` rules as classic BPF: neighbouring numbers
//! with the same body become one range (docker's allowlist is mostly long runs of
//! plainly allowed calls), the ranges are found by a binary search on their starts; a
//! number no rule names gets the default body.
//! Never: decides what a rule does (resolve.rs, mod.rs), installs anything.
//!
//! Why a tree of ranges and not a list (or libseccomp's and `seccompiler`'s layouts):
//! the kernel runs the filter on every syscall the container makes, and at attach time
//! it emulates the filter once per syscall number of the architecture to find the
//! always-allowed ones (its action cache), so the filter's length per number is paid
//! ~460 times at each container start. docker's profile has ~370 allowed names on
//! x86_64 but only ~60 ranges: ~8 compares find any number.

use super::{jump, stmt, BPF_JGE_K};

/// `BPF_JMP | BPF_JA`: jump forward by `k` (32 bits, unlike the 8-bit conditional jumps).
pub(super) const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

/// A body: instructions run when the syscall number matches, ending in a `ret` on every
/// path; the number is in A when it starts. At most 255 instructions after any
/// conditional jump inside it (8-bit offsets); ours are built so.
pub(super) type Body = Vec<libc::sock_filter>;

fn same(a: &[libc::sock_filter], b: &[libc::sock_filter]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
}

/// Appends to `out` the dispatch over `rules` (numbers increasing; expects the syscall
/// number in A); numbers not in `rules` run `default`.
pub(super) fn dispatch(
    rules: &[(u32, &[libc::sock_filter])],
    default: &[libc::sock_filter],
    out: &mut Vec<libc::sock_filter>,
) {
    // Ranges as (first number, body), covering 0..=u32::MAX, starts increasing.
    let mut ranges: Vec<(u32, &[libc::sock_filter])> = Vec::with_capacity(2 * rules.len() + 1);
    fn push<'a>(
        ranges: &mut Vec<(u32, &'a [libc::sock_filter])>,
        start: u32,
        body: &'a [libc::sock_filter],
    ) {
        if !ranges.last().is_some_and(|l| same(l.1, body)) {
            ranges.push((start, body));
        }
    }
    let mut next = 0u64; // the number after the last one placed
    for (nr, body) in rules {
        if u64::from(*nr) > next {
            push(&mut ranges, next as u32, default);
        }
        push(&mut ranges, *nr, body);
        next = u64::from(*nr) + 1;
    }
    if next <= u64::from(u32::MAX) {
        push(&mut ranges, next as u32, default);
    }
    emit(&ranges, out);
}

fn emit(ranges: &[(u32, &[libc::sock_filter])], out: &mut Vec<libc::sock_filter>) {
    if let [(_, body)] = ranges {
        out.extend_from_slice(body);
        return;
    }
    let mid = ranges.len() / 2;
    // nr >= start of mid: on to the `ja` over the left half; else skip it into the left.
    out.push(jump(BPF_JGE_K, ranges[mid].0, 0, 1));
    let ja = out.len();
    out.push(stmt(BPF_JA, 0));
    emit(&ranges[..mid], out);
    out[ja].k = (out.len() - ja - 1) as u32;
    emit(&ranges[mid..], out);
}
