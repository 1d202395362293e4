//! The profile reader and the syscall tables: bad profiles refused naming the field,
//! docker's profile's names all known, the tables against libc and the kernel's header.

use super::*;

#[test]
fn every_name_of_the_default_profile_is_known_somewhere() {
    let tables = [
        syscalls::X86_64,
        syscalls::AARCH64,
        syscalls::POWERPC64,
        syscalls::RISCV64,
        syscalls::S390X,
    ];
    // Calls of 32-bit ABIs and other architectures docker lists for them.
    let foreign = |n: &str| {
        n.ends_with("32")
            || n.ends_with("64")
            || n.ends_with("_time64")
            || n.starts_with("arm_")
            || [
                "_llseek",
                "_newselect",
                "breakpoint",
                "cacheflush",
                "set_tls",
                "ipc",
                "mmap2",
                "sigreturn",
                "sigprocmask",
                "socketcall",
                "stime",
                "waitpid",
                "ugetrlimit",
                "recv",
                "send",
                "umount",
                "select",
                "time",
                "utime",
                "signalfd",
                "sync_file_range2",
                "epoll_ctl_old",
                "epoll_wait_old",
            ]
            .contains(&n)
    };
    let p = Profile::docker_default().unwrap();
    for n in p.rules.iter().flat_map(|r| r.names.iter()) {
        let known = tables.iter().any(|t| syscalls::number(t, n).is_some());
        assert!(
            known || foreign(n),
            "{n}: add it to scripts/gen-syscall-tables.py"
        );
    }
}

fn field_error(text: &str) -> String {
    match Profile::parse(text) {
        Err(e @ ProfileError::Field { .. }) => e.to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_profiles_are_refused_naming_the_field() {
    assert!(matches!(
        Profile::parse("{\"defaultAction\": "),
        Err(ProfileError::Json(_))
    ));
    assert!(matches!(
        Profile::parse("[1, 2]"),
        Err(ProfileError::Json(_))
    ));
    let e = Profile::parse(r#"{"syscalls":[]}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("defaultAction"), "{e}");
    assert_eq!(
        field_error(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["mkdir"],"action":"SCMP_ACT_DENY"}]}"#
        ),
        "syscalls[1].action: unknown action `SCMP_ACT_DENY`"
    );
    assert_eq!(
        field_error(r#"{"defaultAction":"ALLOW"}"#),
        "defaultAction: unknown action `ALLOW`"
    );
    assert_eq!(
        field_error(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#
        ),
        "syscalls[0].args[0].index: 6 is not an argument index (0 to 5)"
    );
    assert_eq!(
        field_error(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"EQ"}]}]}"#
        ),
        "syscalls[0].args[0].op: unknown operator `EQ`"
    );
    assert_eq!(
        field_error(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"new"}}]}"#
        ),
        "syscalls[0].includes.minKernel: `new` is not a kernel version"
    );
    assert_eq!(
        field_error(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ALLOW"}]}"#
        ),
        "syscalls[0].names: no syscall named"
    );
    assert!(field_error(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).contains("not supported"));
    assert_eq!(
        field_error(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["x86_64"]}"#),
        "architectures[0]: unknown architecture `x86_64`"
    );
}

#[test]
fn a_too_large_profile_is_refused_before_parsing() {
    let big = format!(
        "{{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"x\":\"{}\"}}",
        "a".repeat(MAX_PROFILE_BYTES)
    );
    assert!(matches!(
        Profile::parse(&big),
        Err(ProfileError::TooLarge(_))
    ));
}

#[test]
fn kernel_versions() {
    assert_eq!(profile::kernel_version("4.8"), Some((4, 8)));
    assert_eq!(profile::kernel_version("6.18.0-1-amd64"), Some((6, 18)));
    assert_eq!(profile::kernel_version("5"), Some((5, 0)));
    assert_eq!(profile::kernel_version("x.1"), None);
}

/// The generated tables against libc's constants and, on x86_64, the kernel's header.
#[test]
fn syscall_tables_match_libc_and_the_kernel() {
    for (name, want) in [
        ("read", libc::SYS_read),
        ("openat", libc::SYS_openat),
        ("clone", libc::SYS_clone),
        ("clone3", libc::SYS_clone3),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("keyctl", libc::SYS_keyctl),
        ("personality", libc::SYS_personality),
        ("socket", libc::SYS_socket),
        ("mkdirat", libc::SYS_mkdirat),
    ] {
        assert_eq!(
            syscalls::number(syscalls::NATIVE, name),
            Some(want as u32),
            "{name}"
        );
    }
    for t in [
        syscalls::X86_64,
        syscalls::AARCH64,
        syscalls::POWERPC64,
        syscalls::RISCV64,
        syscalls::S390X,
    ] {
        assert!(
            t.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, no duplicates"
        );
        assert_eq!(syscalls::number(t, "lsm_list_modules"), Some(461));
        assert!(syscalls::number(t, "no_such_call").is_none());
    }
    assert_eq!(
        syscalls::number(syscalls::AARCH64, "mkdir"),
        None,
        "generic table"
    );
    assert_eq!(syscalls::number(syscalls::AARCH64, "mkdirat"), Some(34));
    assert_eq!(
        syscalls::number(syscalls::RISCV64, "riscv_flush_icache"),
        Some(259)
    );
    assert_eq!(
        syscalls::number(syscalls::POWERPC64, "swapcontext"),
        Some(249)
    );
    assert_eq!(
        syscalls::number(syscalls::S390X, "s390_runtime_instr"),
        Some(342)
    );
    let header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
    if let Ok(text) = std::fs::read_to_string(header) {
        let mut checked = 0;
        for line in text.lines() {
            let mut w = line.split_whitespace();
            if let (Some("#define"), Some(n), Some(v)) = (w.next(), w.next(), w.next()) {
                if let (Some(name), Ok(v)) = (n.strip_prefix("__NR_"), v.parse::<u32>()) {
                    assert_eq!(syscalls::number(syscalls::X86_64, name), Some(v), "{name}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 300, "{checked}");
    }
}
