//! The default seccomp filter: a small classic-BPF denylist equivalent in effect to
//! docker's default profile for a container without CAP_SYS_ADMIN (the syscalls docker
//! leaves out of its allowlist: kernel modules, kexec, mount API, namespaces, keyrings,
//! bpf, perf, clock setting, swap, reboot, fanotify, quotactl_fd, io_uring, …), each
//! answered with EPERM; `process_vm_readv/writev` (MPI's cross-memory attach),
//! `name_to_handle_at` and `clock_adjtime` are allowed, as in docker's; the NUMA calls
//! ([`numa_calls`]: mbind, get/set_mempolicy, move/migrate_pages) only with CAP_SYS_NICE
//! in the container's set, docker's rule ([`program_with`]);
//! `clone` with namespace flags → EPERM; `clone3` → ENOSYS (libc falls back to clone,
//! whose flags we can inspect — docker does the same); `personality` only with docker's
//! values ([`PERSONALITIES`]); `socket(AF_VSOCK, …)` → EPERM; foreign ABIs (x32, i386 on
//! x86_64) → EPERM.
//!
//! The fakeroot variant ([`Filter::Fakeroot`], the fallback for hosts without subordinate
//! ids, like charliecloud's `ch-run --seccomp`): the
//! same filter plus, in front of it, answers of success (return 0, nothing done) for
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
//! Why not docker's profile through libseccomp or `seccompiler`: this is ~150 BPF
//! instructions (~200 with the fakeroot part) laid out as a binary search on the syscall
//! number (tree.rs: about 10 compares per syscall), no C library and no extra crate to
//! compile; the lists are tables here.
//! Never: decides whether to install (the spec does: no filter at all, hence no fakeroot,
//! with `--privileged` or `seccomp=unconfined`), touches capabilities.

use nix::errno::Errno;

use crate::idmap::MapKind;

mod tree;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// SECCOMP_RET_ERRNO with data 0: the syscall returns 0 without running.
const FAKE_SUCCESS: u32 = SECCOMP_RET_ERRNO;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const BPF_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;

/// Offset of the low 32 bits of `seccomp_data.args[i]` (little-endian targets only).
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

/// Which filter a container gets (when the spec asks for one at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// The docker-like denylist ([`program`]).
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
/// neither 0 nor -1: (name, number, id argument indexes).
pub fn fake_id_calls() -> Vec<(&'static str, libc::c_long, &'static [u32])> {
    let mut v: Vec<(&'static str, libc::c_long, &'static [u32])> = vec![
        ("fchown", libc::SYS_fchown, &[1, 2]),
        ("fchownat", libc::SYS_fchownat, &[2, 3]),
        ("setuid", libc::SYS_setuid, &[0]),
        ("setgid", libc::SYS_setgid, &[0]),
        ("setreuid", libc::SYS_setreuid, &[0, 1]),
        ("setregid", libc::SYS_setregid, &[0, 1]),
        ("setresuid", libc::SYS_setresuid, &[0, 1, 2]),
        ("setresgid", libc::SYS_setresgid, &[0, 1, 2]),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        ("chown", libc::SYS_chown, &[1u32, 2] as &'static [u32]),
        ("lchown", libc::SYS_lchown, &[1, 2]),
    ]);
    v
}

/// mknod-family calls faked for devices: (name, number, mode argument, dev argument).
fn fake_mknod_calls() -> Vec<(&'static str, libc::c_long, u32, u32)> {
    let mut v = vec![("mknodat", libc::SYS_mknodat, 2, 3)];
    #[cfg(target_arch = "x86_64")]
    v.push(("mknod", libc::SYS_mknod, 1, 2));
    v
}

/// The fakeroot rules: (syscall number, body) for the dispatch tree (tree.rs).
fn fakeroot_rules() -> Vec<(u32, tree::Body)> {
    let mut rules = Vec::new();
    for (_, nr, args) in fake_id_calls() {
        // Per id argument: ld, jeq 0 (→ next arg), jeq -1 (→ next arg, else → fake);
        // then ret allow; ret fake.
        let n = args.len() as u8;
        let mut body = Vec::new();
        for (k, i) in args.iter().enumerate() {
            let k = k as u8;
            body.push(stmt(BPF_LD_W_ABS, arg_lo(*i)));
            body.push(jump(BPF_JEQ_K, 0, 1, 0));
            body.push(jump(BPF_JEQ_K, u32::MAX, 0, 3 * (n - k) - 2));
        }
        body.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
        body.push(stmt(BPF_RET_K, FAKE_SUCCESS));
        rules.push((nr as u32, body));
    }
    rules.push((
        libc::SYS_setgroups as u32,
        vec![stmt(BPF_RET_K, FAKE_SUCCESS)],
    ));
    for (_, nr, mode, dev) in fake_mknod_calls() {
        // Block devices and character devices other than 0:0 → fake; the rest → allow.
        rules.push((
            nr as u32,
            vec![
                stmt(BPF_LD_W_ABS, arg_lo(mode)),
                stmt(BPF_AND_K, libc::S_IFMT),
                jump(BPF_JEQ_K, libc::S_IFBLK, 4, 0),
                jump(BPF_JEQ_K, libc::S_IFCHR, 0, 2),
                stmt(BPF_LD_W_ABS, arg_lo(dev)),
                jump(BPF_JEQ_K, 0, 0, 1),
                stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
                stmt(BPF_RET_K, FAKE_SUCCESS),
            ],
        ));
    }
    rules
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

/// The x32 ABI bit on x86_64: syscall numbers at or above it are another ABI.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Syscalls answered with EPERM.
pub fn denied() -> Vec<(&'static str, libc::c_long)> {
    let mut v = vec![
        ("acct", libc::SYS_acct),
        ("add_key", libc::SYS_add_key),
        ("bpf", libc::SYS_bpf),
        ("clock_settime", libc::SYS_clock_settime),
        ("delete_module", libc::SYS_delete_module),
        ("fanotify_init", libc::SYS_fanotify_init),
        ("finit_module", libc::SYS_finit_module),
        ("fsconfig", libc::SYS_fsconfig),
        ("fsmount", libc::SYS_fsmount),
        ("fsopen", libc::SYS_fsopen),
        ("fspick", libc::SYS_fspick),
        ("init_module", libc::SYS_init_module),
        // io_uring runs file and network operations in kernel workers that seccomp never
        // sees, and has been a steady source of kernel bugs; docker's default blocks it.
        ("io_uring_enter", libc::SYS_io_uring_enter),
        ("io_uring_register", libc::SYS_io_uring_register),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("kcmp", libc::SYS_kcmp),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("kexec_load", libc::SYS_kexec_load),
        ("keyctl", libc::SYS_keyctl),
        ("lookup_dcookie", libc::SYS_lookup_dcookie),
        ("mount", libc::SYS_mount),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("move_mount", libc::SYS_move_mount),
        ("nfsservctl", libc::SYS_nfsservctl),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("open_tree", libc::SYS_open_tree),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("pivot_root", libc::SYS_pivot_root),
        ("quotactl", libc::SYS_quotactl),
        ("quotactl_fd", libc::SYS_quotactl_fd),
        ("reboot", libc::SYS_reboot),
        ("request_key", libc::SYS_request_key),
        ("setns", libc::SYS_setns),
        ("settimeofday", libc::SYS_settimeofday),
        ("swapoff", libc::SYS_swapoff),
        ("swapon", libc::SYS_swapon),
        ("syslog", libc::SYS_syslog),
        ("umount2", libc::SYS_umount2),
        ("unshare", libc::SYS_unshare),
        ("userfaultfd", libc::SYS_userfaultfd),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        ("_sysctl", libc::SYS__sysctl),
        ("create_module", 174),
        ("get_kernel_syms", 177),
        ("ioperm", libc::SYS_ioperm),
        ("iopl", libc::SYS_iopl),
        ("query_module", 178),
        ("sysfs", libc::SYS_sysfs),
        ("uselib", libc::SYS_uselib),
        ("ustat", libc::SYS_ustat),
    ]);
    v
}

/// The NUMA memory-policy calls: answered with EPERM unless the container's
/// capabilities hold CAP_SYS_NICE (docker's rule for the first four; `move_pages` and
/// `migrate_pages`, which docker never allows, go with them: the same policy work on
/// pages, and no more than the kernel's own checks allow the caller).
pub fn numa_calls() -> Vec<(&'static str, libc::c_long)> {
    vec![
        ("get_mempolicy", libc::SYS_get_mempolicy),
        ("mbind", libc::SYS_mbind),
        ("set_mempolicy", libc::SYS_set_mempolicy),
        // The same number on x86_64 and aarch64 (the generic table, Linux 5.17).
        ("set_mempolicy_home_node", 450),
        ("move_pages", libc::SYS_move_pages),
        ("migrate_pages", libc::SYS_migrate_pages),
    ]
}

/// personality(2) values docker's default profile lets through: PER_LINUX, PER_LINUX32,
/// UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query). Others (ADDR_NO_RANDOMIZE,
/// READ_IMPLIES_EXEC…) weaken the container's hardening.
pub const PERSONALITIES: [u32; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// `AF_VSOCK`: sockets to the hypervisor and other VMs, refused as docker does.
pub const AF_VSOCK: u32 = 40;

/// personality: one of [`PERSONALITIES`] → allow, else `deny`.
fn personality_body(deny: u32) -> tree::Body {
    let n = PERSONALITIES.len() as u8;
    let mut b = vec![stmt(BPF_LD_W_ABS, arg_lo(0))];
    for (k, v) in PERSONALITIES.iter().enumerate() {
        // match → jump to the `ret allow` after the last compare
        b.push(jump(BPF_JEQ_K, *v, n - 1 - k as u8 + 1, 0));
    }
    b.push(stmt(BPF_RET_K, deny));
    b.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    b
}

/// socket: domain `AF_VSOCK` → `deny`, else allow.
fn socket_body(deny: u32) -> tree::Body {
    vec![
        stmt(BPF_LD_W_ABS, arg_lo(0)),
        jump(BPF_JEQ_K, AF_VSOCK, 0, 1),
        stmt(BPF_RET_K, deny),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
    ]
}

/// clone flags that create namespaces (CLONE_NEWNS … CLONE_NEWTIME).
pub const CLONE_NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u32
    | 0x80; // CLONE_NEWTIME

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The default filter program (pure; unit-tested for shape): `program_for(Filter::Default)`.
pub fn program() -> Vec<libc::sock_filter> {
    program_for(Filter::Default)
}

/// The program of one [`Filter`] (pure; unit-tested by evaluation), NUMA calls denied.
pub fn program_for(filter: Filter) -> Vec<libc::sock_filter> {
    program_with(filter, false)
}

/// [`program_for`], with the [`numa_calls`] allowed when `numa` (CAP_SYS_NICE).
pub fn program_with(filter: Filter, numa: bool) -> Vec<libc::sock_filter> {
    let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let mut p = vec![
        // seccomp_data.arch at offset 4
        stmt(BPF_LD_W_ABS, 4),
        jump(BPF_JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET_K, eperm),
        // seccomp_data.nr at offset 0
        stmt(BPF_LD_W_ABS, 0),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        p.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
        p.push(stmt(BPF_RET_K, eperm));
    }
    let mut rules = Vec::new();
    if filter == Filter::Fakeroot {
        rules.extend(fakeroot_rules());
    }
    let numa_denied = if numa { vec![] } else { numa_calls() };
    for (_, nr) in denied().into_iter().chain(numa_denied) {
        rules.push((nr as u32, vec![stmt(BPF_RET_K, eperm)]));
    }
    rules.push((libc::SYS_clone3 as u32, vec![stmt(BPF_RET_K, enosys)]));
    rules.push((libc::SYS_personality as u32, personality_body(eperm)));
    rules.push((libc::SYS_socket as u32, socket_body(eperm)));
    // clone: flags are args[0] (x86_64 and aarch64), low word at offset 16 (little-endian).
    rules.push((
        libc::SYS_clone as u32,
        vec![
            stmt(BPF_LD_W_ABS, 16),
            jump(BPF_JSET_K, CLONE_NAMESPACE_FLAGS, 0, 1),
            stmt(BPF_RET_K, eperm),
            stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        ],
    ));
    p.extend(tree::dispatch(rules));
    p
}

/// Install [`program`] on the calling thread (inherited by its children and kept across
/// exec). Needs no_new_privs or CAP_SYS_ADMIN in the current user namespace.
pub fn install_default() -> Result<(), Errno> {
    install(Filter::Default)
}

/// Install [`program_for(filter)`](program_for) on the calling thread, like
/// [`install_default`].
pub fn install(filter: Filter) -> Result<(), Errno> {
    install_with(filter, false)
}

/// [`install`] the program of [`program_with`].
pub fn install_with(filter: Filter, numa: bool) -> Result<(), Errno> {
    crate::sys::install_seccomp(&program_with(filter, numa))
}

#[cfg(test)]
mod tests;
