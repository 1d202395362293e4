//! docker's default profile (plus imago's addition, [`Profile::docker_default`]) ready
//! to compile: builtin_data.rs holds its rules with the architecture conditions already
//! evaluated and the names already turned into this architecture's numbers, so a
//! container start only selects the rules by capability and kernel and emits the BPF.
//! Owns: that data's shape and the selection. Never: parses JSON (builtin_data.rs is
//! generated from the vendored default.json by builtin_tests.rs, which fails when the
//! file is stale), lays out the program (mod.rs, tree.rs).
//!
//! Why not parse default.json at start: parsing and resolving the names cost ~0.15 ms
//! of every container start; the pre-resolved rules cost a few µs.
//!
//! [`Profile::docker_default`]: super::Profile::docker_default

use super::builtin_data::{DEFAULT_ACTION, RULES};
use super::profile::ArgCond;
use super::resolve::{Caps, Clause};
use super::{assemble, Filter, SeccompError};

/// docker's `includes`/`excludes` without the architectures (already evaluated).
#[derive(Debug)]
pub(super) struct BuiltinConds {
    /// Capabilities (`CAP_…`).
    pub caps: &'static [&'static str],
    /// Kernel version (major, minor).
    pub min_kernel: Option<(u32, u32)>,
}

/// One rule of the default profile that applies to this architecture.
#[derive(Debug)]
pub(super) struct Builtin {
    /// The numbers of its names on this architecture, in the profile's order.
    pub nrs: &'static [u32],
    /// The `SECCOMP_RET_*` word.
    pub action: u32,
    /// All must hold.
    pub args: &'static [ArgCond],
    /// Applies only when all of these hold.
    pub includes: BuiltinConds,
    /// Does not apply when any of these holds.
    pub excludes: BuiltinConds,
}

/// docker's selection (as resolve.rs's `applies`, the architecture part done).
fn applies(r: &Builtin, caps: &Caps, kernel: (u32, u32)) -> bool {
    let (inc, exc) = (&r.includes, &r.excludes);
    if exc.caps.iter().any(|c| caps.has(c)) || exc.min_kernel.is_some_and(|k| kernel >= k) {
        return false;
    }
    inc.caps.iter().all(|c| caps.has(c)) && inc.min_kernel.is_none_or(|k| kernel >= k)
}

/// The default profile's program for a container with `caps` on `kernel`: the same
/// program as [`super::program`] of [`super::Profile::docker_default`] for this
/// architecture.
pub(super) fn default_program(
    filter: Filter,
    caps: &Caps,
    kernel: (u32, u32),
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let mut clauses: Vec<Clause> = Vec::with_capacity(RULES.len());
    let mut pairs = Vec::with_capacity(512);
    for r in RULES.iter().filter(|r| applies(r, caps, kernel)) {
        let k = clauses.len() as u32;
        clauses.push((r.args, r.action));
        pairs.extend(r.nrs.iter().map(|&nr| (nr, k)));
    }
    assemble(filter, pairs, &clauses, DEFAULT_ACTION)
}
