//! The container's seccomp filter: docker's default profile (vendored from moby,
//! `crates/sandbox/profiles/seccomp/default.json`) or a docker/OCI profile the user gave
//! (`--security-opt seccomp=FILE`), compiled to classic BPF for the build's architecture
//! at each start, with docker's conditions evaluated for this container: its capability
//! set (`includes.caps`: CAP_SYS_ADMIN lets mount, unshare, setns… through, CAP_SYS_NICE
//! the NUMA calls, CAP_SYS_PTRACE kcmp…), the running kernel (`minKernel`) and the
//! architecture (`arches`). Argument conditions are compared on all 64 bits, as
//! libseccomp does (personality values, clone's namespace flags, socket families).
//! Calls of another ABI (i386 and x32 on x86_64) get EPERM: the tables are the native
//! ABI's only. The default profile is not parsed at start: builtin.rs holds it
//! pre-resolved for the architecture (generated, checked current by a test), so a start
//! only selects its rules by capability and kernel and emits (~10 µs instead of ~0.15 ms).
//!
//! The fakeroot variant ([`Filter::Fakeroot`], the fallback for hosts without subordinate
//! ids, like charliecloud's `ch-run --seccomp`): the same filter with, in front of the
//! profile's decision for these calls, answers of success (return 0, nothing done) for
//! the calls the kernel would refuse under a single mapping, where only id 0 exists:
//! - `chown`, `lchown`, `fchown`, `fchownat` naming an id other than 0 and -1 (the kernel
//!   says EINVAL: unmapped id); chown to 0 or -1 runs for real (errors such as ENOENT and
//!   the clearing of set-id bits kept);
//! - `setuid`, `setgid`, `setreuid`, `setregid`, `setresuid`, `setresgid` naming an id
//!   other than 0 and -1 (EINVAL); the process stays uid/gid 0;
//! - `setgroups`, always (EPERM: setgroups is `deny` in a single mapping);
//! - `mknod`, `mknodat` of a block device or a character device other than 0:0 (EPERM
//!   in any user namespace): no node is created. A 0:0 character device (an overlay
//!   whiteout, allowed since Linux 5.8), fifos, sockets and files run for real.
//!
//! `setfsuid`/`setfsgid` never fail (they return the old id), so they are left alone;
//! `capset` works in the namespace. [`Filter::for_map`] picks the variant: fakeroot only
//! for [`MapKind::Single`], and exec.rs keeps it only for a root container there (its one
//! id is 0, so faking set*id cannot leave a process with other ids than asked by the
//! spec); a non-root single-mapped container gets the default filter.
//!
//! Why our own emitter and not libseccomp or `seccompiler`: tree.rs (ranges found by a
//! binary search) keeps the program at ~260 instructions and ~12 per syscall; the kernel
//! runs it for every syscall number when it is attached (its action cache), at every
//! container start. docs/runtime.md, "Seccomp", has the comparison.
//! Never: decides whether to install (the spec does: no filter at all, hence no fakeroot,
//! with `--privileged` or `seccomp=unconfined`), touches capabilities, reads files.

use std::collections::BTreeMap;

use nix::errno::Errno;

use crate::idmap::MapKind;

mod builtin;
#[rustfmt::skip]
mod builtin_data;
pub mod profile;
pub mod resolve;
pub mod syscalls;
mod tree;

pub use profile::{Profile, ProfileError, MAX_PROFILE_BYTES};
pub use resolve::{Caps, Context};

#[cfg(test)]
use imago_fakeroot::filter::RET_ALLOW as SECCOMP_RET_ALLOW;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// SECCOMP_RET_ERRNO with data 0: the syscall returns 0 without running.
const FAKE_SUCCESS: u32 = SECCOMP_RET_ERRNO;
/// The kernel's limit on a classic BPF program.
const BPF_MAXINSNS: usize = 4096;

// The BPF building blocks are the fakeroot filter's (this crate depends on it).
use imago_fakeroot::filter::{jump, stmt, BPF_JEQ_K, BPF_JGE_K, BPF_LD_W_ABS, BPF_RET_K};
const BPF_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;

/// Why no filter could be made or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile is not usable.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The program is longer than the kernel takes.
    #[error(
        "the seccomp profile compiles to {0} instructions, more than the kernel's {BPF_MAXINSNS}"
    )]
    TooLong(usize),
    /// prctl(PR_SET_SECCOMP) failed.
    #[error("install the seccomp filter")]
    Install(#[source] Errno),
}

/// Offset of the low 32 bits of `seccomp_data.args[i]`.
const fn arg_lo(i: u32) -> u32 {
    if cfg!(target_endian = "little") {
        16 + 8 * i
    } else {
        20 + 8 * i
    }
}

/// Which filter a container gets (when the spec asks for one at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// The profile's filter.
    Default,
    /// [`Filter::Default`] plus the fakeroot answers (module doc).
    Fakeroot,
}

impl Filter {
    /// Fakeroot for [`MapKind::Single`], the default filter for the other mappings (where
    /// chown and set*id to the mapped ids work for real).
    pub fn for_map(kind: MapKind) -> Filter {
        match kind {
            MapKind::Single => Filter::Fakeroot,
            MapKind::Identity | MapKind::SubIds => Filter::Default,
        }
    }
}

/// Calls faked under [`Filter::Fakeroot`] when one of the id arguments (by index) is
/// neither 0 nor -1: (name, id argument indexes). Names this architecture lacks
/// (`chown` on aarch64) are skipped.
pub const FAKE_ID_CALLS: [(&str, &[u32]); 10] = [
    ("chown", &[1, 2]),
    ("lchown", &[1, 2]),
    ("fchown", &[1, 2]),
    ("fchownat", &[2, 3]),
    ("setuid", &[0]),
    ("setgid", &[0]),
    ("setreuid", &[0, 1]),
    ("setregid", &[0, 1]),
    ("setresuid", &[0, 1, 2]),
    ("setresgid", &[0, 1, 2]),
];

/// mknod-family calls faked for devices: (name, mode argument, dev argument).
const FAKE_MKNOD_CALLS: [(&str, u32, u32); 2] = [("mknod", 1, 2), ("mknodat", 2, 3)];

/// The fakeroot prefixes by number: each returns the fake success or falls through its
/// end, where the profile's body for that number follows.
fn fakeroot_prefixes() -> BTreeMap<u32, tree::Body> {
    let nr = |name| syscalls::number(syscalls::NATIVE, name);
    let mut m = BTreeMap::new();
    for (name, args) in FAKE_ID_CALLS {
        let Some(n) = nr(name) else { continue };
        // Per id argument: ld, jeq 0 (→ next arg), jeq -1 (→ next arg, else → fake);
        // then `ja` over the fake `ret` to the profile's body.
        let k = args.len() as u8;
        let mut body = Vec::new();
        for (j, i) in args.iter().enumerate() {
            let j = j as u8;
            body.push(stmt(BPF_LD_W_ABS, arg_lo(*i)));
            body.push(jump(BPF_JEQ_K, 0, 1, 0));
            body.push(jump(BPF_JEQ_K, u32::MAX, 0, 3 * (k - j) - 2));
        }
        body.push(stmt(tree::BPF_JA, 1));
        body.push(stmt(BPF_RET_K, FAKE_SUCCESS));
        m.insert(n, body);
    }
    if let Some(n) = nr("setgroups") {
        m.insert(n, vec![stmt(BPF_RET_K, FAKE_SUCCESS)]);
    }
    for (name, mode, dev) in FAKE_MKNOD_CALLS {
        let Some(n) = nr(name) else { continue };
        // Block devices and character devices other than 0:0 → fake; the rest → profile.
        m.insert(
            n,
            vec![
                stmt(BPF_LD_W_ABS, arg_lo(mode)),
                stmt(BPF_AND_K, libc::S_IFMT),
                jump(BPF_JEQ_K, libc::S_IFBLK, 4, 0),
                jump(BPF_JEQ_K, libc::S_IFCHR, 0, 2),
                stmt(BPF_LD_W_ABS, arg_lo(dev)),
                jump(BPF_JEQ_K, 0, 0, 1),
                stmt(tree::BPF_JA, 1),
                stmt(BPF_RET_K, FAKE_SUCCESS),
            ],
        );
    }
    m
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
#[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
const AUDIT_ARCH: u32 = 0xc000_0015; // AUDIT_ARCH_PPC64LE
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: u32 = 0xc000_00f3; // AUDIT_ARCH_RISCV64
#[cfg(target_arch = "s390x")]
const AUDIT_ARCH: u32 = 0x8000_0016; // AUDIT_ARCH_S390X (big-endian)

/// The x32 ABI bit on x86_64: syscall numbers at or above it are another ABI.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The program of `profile` for `ctx` (pure; unit-tested by evaluation).
pub fn program(
    filter: Filter,
    profile: &Profile,
    ctx: &Context,
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let applying: Vec<&profile::Rule> = profile
        .rules
        .iter()
        .filter(|r| resolve::applies(r, ctx))
        .collect();
    let clauses: Vec<resolve::Clause> =
        applying.iter().map(|r| (&r.args[..], r.action.0)).collect();
    let mut pairs = Vec::with_capacity(512);
    for (k, r) in applying.iter().enumerate() {
        // Names this architecture lacks are skipped, as docker does.
        pairs.extend(
            r.names
                .iter()
                .filter_map(|n| syscalls::number(ctx.table, n))
                .map(|nr| (nr, k as u32)),
        );
    }
    assemble(filter, pairs, &clauses, profile.default_action.0)
}

/// The program for `filter` from the rules that apply (`clauses`, in profile order):
/// `pairs` holds (syscall number, index into `clauses`) for every number a rule names,
/// in any order. For one number, the first rule whose args match decides.
fn assemble(
    filter: Filter,
    mut pairs: Vec<(u32, u32)>,
    clauses: &[resolve::Clause],
    default: u32,
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    // By number, then profile order; a name listed twice in one rule counts once.
    pairs.sort_unstable();
    pairs.dedup();
    let prefixes = match filter {
        Filter::Fakeroot => fakeroot_prefixes(),
        Filter::Default => BTreeMap::new(),
    };
    // Every number's body, one after the other in one buffer: (number, start, end).
    let mut arena = Vec::with_capacity(2 * pairs.len() + 256);
    let mut spans = Vec::with_capacity(pairs.len() + prefixes.len());
    let mut pre = prefixes.iter().peekable();
    let mut i = 0;
    loop {
        let next_pre = pre.peek().map(|(n, _)| **n);
        let Some(nr) = pairs.get(i).map(|p| p.0).into_iter().chain(next_pre).min() else {
            break;
        };
        let start = arena.len();
        if next_pre == Some(nr) {
            if let Some((_, prefix)) = pre.next() {
                arena.extend_from_slice(prefix);
            }
        }
        let j = i + pairs[i..].iter().take_while(|p| p.0 == nr).count();
        // No rule for a faked number: its prefix falls through to the default action.
        resolve::body_into(
            &mut arena,
            pairs[i..j].iter().map(|&(_, k)| clauses[k as usize]),
            default,
        );
        i = j;
        spans.push((nr, start, arena.len()));
    }
    let bodies: Vec<(u32, &[libc::sock_filter])> = spans
        .iter()
        .map(|&(nr, start, end)| (nr, &arena[start..end]))
        .collect();
    let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let mut p = Vec::with_capacity(arena.len() + 2 * bodies.len() + 8);
    p.extend_from_slice(&[
        // seccomp_data.arch at offset 4
        stmt(BPF_LD_W_ABS, 4),
        jump(BPF_JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET_K, eperm),
        // seccomp_data.nr at offset 0
        stmt(BPF_LD_W_ABS, 0),
    ]);
    #[cfg(target_arch = "x86_64")]
    {
        p.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
        p.push(stmt(BPF_RET_K, eperm));
    }
    tree::dispatch(&bodies, &[stmt(BPF_RET_K, default)], &mut p);
    if p.len() > BPF_MAXINSNS {
        return Err(SeccompError::TooLong(p.len()));
    }
    Ok(p)
}

/// Install the filter of `profile_json` (docker's default profile when `None`) for this
/// container's `caps` on the calling thread (inherited by its children and kept across
/// exec). Needs no_new_privs or CAP_SYS_ADMIN in the current user namespace.
pub fn install(filter: Filter, profile_json: Option<&str>, caps: Caps) -> Result<(), SeccompError> {
    let prog = match profile_json {
        Some(text) => program(filter, &Profile::parse(text)?, &Context::native(caps))?,
        // The default profile comes pre-resolved (builtin.rs): no JSON at start.
        None => builtin::default_program(filter, &caps, resolve::running_kernel())?,
    };
    crate::sys::install_seccomp(&prog).map_err(SeccompError::Install)
}

#[cfg(test)]
mod builtin_tests;
#[cfg(test)]
mod profile_tests;
#[cfg(test)]
mod tests;
