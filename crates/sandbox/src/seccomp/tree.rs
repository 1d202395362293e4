//! The syscall-number dispatch of a filter as a binary search, not a list.
//! Owns: laying out `(syscall number, body)` rules as classic BPF whose compares grow
//! with log2 of the rules; a number no rule names falls through to `ret allow`.
//! Never: decides what a rule does (mod.rs), installs anything.
//!
//! Why a tree: the kernel runs the filter on every syscall the container makes, and at
//! attach time it emulates the filter once per syscall number of the architecture to
//! find the always-allowed ones (its action cache). A list of ~60 compares made that
//! attach cost about 0.2 ms of every container start; the tree needs ~10 compares per
//! number.

use super::{jump, stmt, BPF_JEQ_K, BPF_JGE_K, BPF_RET_K, SECCOMP_RET_ALLOW};

/// `BPF_JMP | BPF_JA`: jump forward by `k` (32 bits, unlike the 8-bit conditional jumps).
pub(super) const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

/// Rules per leaf: a leaf is a short list of `jeq nr` with each body inline.
const LEAF: usize = 4;

/// A body: instructions run when the syscall number matches, ending in a `ret` on every
/// path; the number is in A when it starts. At most 255 instructions (the `jeq` that
/// skips it has an 8-bit offset); ours have at most 11.
pub(super) type Body = Vec<libc::sock_filter>;

/// The dispatch over `rules` (expects the syscall number in A). Rules are sorted here;
/// for a number named twice the first rule wins.
pub(super) fn dispatch(mut rules: Vec<(u32, Body)>) -> Vec<libc::sock_filter> {
    rules.sort_by_key(|r| r.0); // stable: the first of equal numbers stays first
    rules.dedup_by_key(|r| r.0);
    emit(&rules)
}

fn emit(rules: &[(u32, Body)]) -> Vec<libc::sock_filter> {
    if rules.len() <= LEAF {
        let mut p = Vec::new();
        for (nr, body) in rules {
            // A body longer than 255 cannot be skipped by jeq's offset; ours are tiny
            // (unit-tested), and a clipped offset would be caught by the tests' checks.
            let skip = u8::try_from(body.len()).unwrap_or(u8::MAX);
            p.push(jump(BPF_JEQ_K, *nr, 0, skip));
            p.extend_from_slice(body);
        }
        p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
        return p;
    }
    let mid = rules.len() / 2;
    let left = emit(&rules[..mid]);
    let right = emit(&rules[mid..]);
    // nr >= pivot: on to the `ja` over the left half; else skip it into the left half.
    let mut p = vec![
        jump(BPF_JGE_K, rules[mid].0, 0, 1),
        stmt(BPF_JA, left.len() as u32),
    ];
    p.extend(left);
    p.extend(right);
    p
}
