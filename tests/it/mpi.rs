//! A two-rank MPI program (tests/it/data/mpi_pingpong.c, built with the host's Debian
//! mpicc) started by the host's `mpirun -n 2`, each rank in its own `irun --hpc`
//! container of an image holding Debian's Open MPI runtime, as root, imago-sub and
//! imago-nosub. The ranks pass 8 MiB back and forth and print their checksums.
//!
//! Shared memory is proven by leaving Open MPI no other way: `--mca pml ob1 --mca btl
//! self,vader` (no TCP, no libfabric or UCX), so a rank that reaches its peer did so
//! through vader's segment in the host's /dev/shm; with `--mca btl self` alone the same
//! run must fail. Each rank also reports whether it may read its peer's memory
//! (process_vm_readv, the CMA single copy) and which single-copy mechanism Open MPI
//! kept: CMA, which needs both ranks in one user namespace and the seccomp profile's
//! consent. Every mpirun is killed after a bounded wait (see mpi_support).

#![allow(clippy::unwrap_used)] // test helpers: a path that is not UTF-8 is a setup failure

use std::path::Path;

use imago_it::{users, Env, Out, User};

use crate::mpi_support::{mpi, mpirun, ranks, two_good_ranks, IMAGE};

/// Only Open MPI's own shared-memory transport (and `self` for a rank's own messages).
const VADER_ONLY: &[&str] = &["--mca", "pml", "ob1", "--mca", "btl", "self,vader"];

/// `mpirun -n 2 MPIRUN_ARGS irun --hpc IMAGE PROG`.
fn ranks_in_irun_hpc(env: &Env, mpirun_args: &[&str], prog: &Path) -> Out {
    let irun = imago_it::bin("irun");
    let rank = [
        irun.to_str().unwrap(),
        "--hpc",
        IMAGE,
        prog.to_str().unwrap(),
    ];
    mpirun(env, mpirun_args, &rank)
}

/// Both ranks talked, their data is right, and the large messages went by CMA.
fn by_cma(out: &Out, user: User, why: &str) {
    for r in two_good_ranks(out) {
        assert_eq!(
            (r.cma.as_str(), r.single_copy.as_str()),
            ("ok", "cma"),
            "[{}] rank {}: {why}: {out}",
            user.name(),
            r.rank
        );
    }
}

#[test]
fn two_ranks_on_the_host_use_shared_memory_and_cma() {
    // The baseline without containers: if this fails, the host's Open MPI is broken,
    // not irun.
    let Some(mpi) = mpi() else { return };
    for user in users() {
        let (env, prog) = mpi.env(user);
        let out = mpirun(&env, VADER_ONLY, &[prog.to_str().unwrap()]);
        by_cma(&out, user, "two processes of one user share memory by CMA");
    }
}

#[test]
fn two_ranks_in_irun_hpc_containers_use_shared_memory_and_cma() {
    let Some(mpi) = mpi() else { return };
    for user in users() {
        let (env, prog) = mpi.env(user);
        let out = ranks_in_irun_hpc(&env, VADER_ONLY, &prog);
        // Both ranks in one user namespace (the kernel lets a process read another's
        // memory only then) and process_vm_readv allowed by the seccomp profile: Open
        // MPI keeps its single-copy path.
        by_cma(&out, user, "reads its peer by CMA");
    }
}

#[test]
fn without_the_shared_memory_transport_the_ranks_cannot_talk() {
    // The control for the test above: with vader gone nothing else may connect the
    // ranks, so their success there was shared memory.
    let Some(mpi) = mpi() else { return };
    for user in users() {
        let (env, prog) = mpi.env(user);
        let out = ranks_in_irun_hpc(
            &env,
            &["--mca", "pml", "ob1", "--mca", "btl", "self"],
            &prog,
        );
        assert_ne!(out.code(), Some(0), "[{}] {out}", user.name());
        assert!(
            ranks(&out).is_empty(),
            "[{}] no rank got through: {out}",
            user.name()
        );
        // Open MPI 4.1 says "unreachable" or "error occurred in MPI_Init" (its
        // forwarding of a rank's help text to mpirun loses one now and then, also
        // without containers: under load, as in the storage-driver passes).
        let said = format!("{}{}", out.stdout(), out.stderr());
        // When it loses the text, its ORTE_ERROR_LOG names show_help.c instead.
        assert!(
            said.contains("unreachable")
                || said.contains("MPI_Init")
                || said.contains("show_help.c"),
            "[{}] Open MPI says the peer is unreachable: {out}",
            user.name()
        );
    }
}

#[test]
fn copy_in_copy_out_shared_memory_when_cma_is_turned_off() {
    // The documented fallback for ranks that cannot share a user namespace: vader
    // without a single copy (two copies through the /dev/shm segment).
    let Some(mpi) = mpi() else { return };
    let mut args = VADER_ONLY.to_vec();
    args.extend(["--mca", "btl_vader_single_copy_mechanism", "none"]);
    for user in users() {
        let (env, prog) = mpi.env(user);
        let out = ranks_in_irun_hpc(&env, &args, &prog);
        for r in two_good_ranks(&out) {
            assert_eq!(r.single_copy, "none", "[{}] {out}", user.name());
        }
    }
}

#[test]
fn ranks_without_the_shared_user_namespace_turn_cma_off_instead_of_hanging() {
    // A rank that cannot register in the rendezvous (here: `userns` in the runtime dir
    // is a file, so no rank can make it) gets a user namespace of its own; Open MPI 4.1
    // then hangs in its CMA path unless irun turns the single copy off, which it does
    // and says so. mpirun's bounded wait turns a hang into a failure.
    let Some(mpi) = mpi() else { return };
    for user in users() {
        let (env, prog) = mpi.env(user);
        // mpirun (a program not ours) gets the Env's runtime dir as XDG_RUNTIME_DIR,
        // and the ranks' irun with it.
        let imago = env.runtime_dir().join("imago");
        std::fs::create_dir_all(&imago).unwrap();
        env.give(&imago);
        let blocker = imago.join("userns");
        std::fs::write(&blocker, b"").unwrap();
        env.give(&blocker);
        let out = ranks_in_irun_hpc(&env, VADER_ONLY, &prog);
        for r in two_good_ranks(&out) {
            // EPERM: the ranks really are in two user namespaces.
            assert_eq!(
                (r.cma.as_str(), r.single_copy.as_str()),
                ("EPERM", "none"),
                "[{}] rank {}: {out}",
                user.name(),
                r.rank
            );
        }
        let warned = out
            .stderr()
            .matches("OMPI_MCA_btl_vader_single_copy_mechanism=none is set")
            .count();
        assert_eq!(warned, 2, "[{}] one line per rank: {out}", user.name());
    }
}
