//! The default seccomp filter: a small classic-BPF denylist equivalent in effect to
//! docker's default profile for a container without CAP_SYS_ADMIN (the syscalls docker
//! leaves out of its allowlist: kernel modules, kexec, mount API, namespaces, keyrings,
//! bpf, perf, clock setting, swap, reboot, process_vm_*, …), each answered with EPERM;
//! `clone` with namespace flags → EPERM; `clone3` → ENOSYS (libc falls back to clone,
//! whose flags we can inspect — docker does the same); foreign ABIs (x32, i386 on
//! x86_64) → EPERM.
//!
//! Why not docker's profile through libseccomp or `seccompiler`: this is ~60 BPF
//! instructions, no C library and no extra crate to compile; the list is a table here.
//! Never: decides whether to install (the spec does), touches capabilities.

use nix::errno::Errno;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

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
        ("clock_adjtime", libc::SYS_clock_adjtime),
        ("clock_settime", libc::SYS_clock_settime),
        ("delete_module", libc::SYS_delete_module),
        ("finit_module", libc::SYS_finit_module),
        ("fsconfig", libc::SYS_fsconfig),
        ("fsmount", libc::SYS_fsmount),
        ("fsopen", libc::SYS_fsopen),
        ("fspick", libc::SYS_fspick),
        ("get_mempolicy", libc::SYS_get_mempolicy),
        ("init_module", libc::SYS_init_module),
        ("kcmp", libc::SYS_kcmp),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("kexec_load", libc::SYS_kexec_load),
        ("keyctl", libc::SYS_keyctl),
        ("lookup_dcookie", libc::SYS_lookup_dcookie),
        ("mbind", libc::SYS_mbind),
        ("mount", libc::SYS_mount),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("move_mount", libc::SYS_move_mount),
        ("move_pages", libc::SYS_move_pages),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("nfsservctl", libc::SYS_nfsservctl),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("open_tree", libc::SYS_open_tree),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("pivot_root", libc::SYS_pivot_root),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("quotactl", libc::SYS_quotactl),
        ("reboot", libc::SYS_reboot),
        ("request_key", libc::SYS_request_key),
        ("set_mempolicy", libc::SYS_set_mempolicy),
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

/// The filter program (pure; unit-tested for shape).
pub fn program() -> Vec<libc::sock_filter> {
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
    for (_, nr) in denied() {
        p.push(jump(BPF_JEQ_K, nr as u32, 0, 1));
        p.push(stmt(BPF_RET_K, eperm));
    }
    p.push(jump(BPF_JEQ_K, libc::SYS_clone3 as u32, 0, 1));
    p.push(stmt(BPF_RET_K, enosys));
    // clone: flags are args[0] (x86_64 and aarch64), low word at offset 16 (little-endian).
    p.push(jump(BPF_JEQ_K, libc::SYS_clone as u32, 0, 3));
    p.push(stmt(BPF_LD_W_ABS, 16));
    p.push(jump(BPF_JSET_K, CLONE_NAMESPACE_FLAGS, 0, 1));
    p.push(stmt(BPF_RET_K, eperm));
    p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    p
}

/// Install [`program`] on the calling thread (inherited by its children and kept across
/// exec). Needs no_new_privs or CAP_SYS_ADMIN in the current user namespace.
pub fn install_default() -> Result<(), Errno> {
    crate::sys::install_seccomp(&program())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_is_small_and_ends_in_allow() {
        let p = program();
        assert!(p.len() < 200, "{}", p.len());
        let last = p.last().unwrap();
        assert_eq!((last.code, last.k), (BPF_RET_K, SECCOMP_RET_ALLOW));
        // every conditional jump stays inside the program
        for (i, ins) in p
            .iter()
            .enumerate()
            .filter(|(_, ins)| ins.code & 0x07 == libc::BPF_JMP as u16)
        {
            assert!(i + 1 + (ins.jt.max(ins.jf) as usize) < p.len());
        }
    }

    #[test]
    fn denies_the_dangerous_ones() {
        let names: Vec<_> = denied().iter().map(|d| d.0).collect();
        for n in [
            "mount",
            "unshare",
            "setns",
            "kexec_load",
            "init_module",
            "bpf",
            "keyctl",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        assert!(
            !names.contains(&"ptrace"),
            "docker allows ptrace on kernels >= 4.8"
        );
    }

    /// Interpret the program for one syscall (a tiny BPF evaluator for the opcodes used).
    fn eval(nr: u32, arg0: u32) -> u32 {
        let p = program();
        let data = |off: u32| match off {
            0 => nr,
            4 => AUDIT_ARCH,
            16 => arg0,
            _ => 0,
        };
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = p[pc];
            match i.code {
                BPF_LD_W_ABS => a = data(i.k),
                BPF_RET_K => return i.k,
                BPF_JEQ_K | BPF_JGE_K | BPF_JSET_K => {
                    let t = match i.code {
                        BPF_JEQ_K => a == i.k,
                        BPF_JGE_K => a >= i.k,
                        _ => a & i.k != 0,
                    };
                    pc += if t { i.jt as usize } else { i.jf as usize };
                }
                c => panic!("opcode {c}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn decisions() {
        let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
        assert_eq!(eval(libc::SYS_mount as u32, 0), eperm);
        assert_eq!(eval(libc::SYS_read as u32, 0), SECCOMP_RET_ALLOW);
        assert_eq!(eval(libc::SYS_execve as u32, 0), SECCOMP_RET_ALLOW);
        assert_eq!(
            eval(libc::SYS_clone as u32, libc::SIGCHLD as u32),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            eval(libc::SYS_clone as u32, libc::CLONE_NEWUSER as u32),
            eperm
        );
        assert_eq!(
            eval(libc::SYS_clone3 as u32, 0),
            SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
    }
}
