/* mpi_pingpong.c: two MPI ranks pass one large message back and forth, for the MPI
 * integration test (tests/it/mpi.rs), which compiles it on the host with Debian's mpicc
 * and runs each rank in a container.
 *
 * Rank 0 fills SIZE bytes with byte i = (i * 31 + 7) mod 256 and sends them to rank 1;
 * in round r (1..ROUNDS) rank 1 adds r to every byte and sends the buffer back, and
 * rank 0 sends what it got on. SIZE is far above the shared-memory transport's eager
 * limit, so Open MPI's vader BTL moves it with its single-copy mechanism (CMA:
 * process_vm_readv/writev) when that is available.
 *
 * Each rank prints one line:
 *   rank=R size=N pid=P peer_pid=Q cma=ok|<errno name> single_copy=<mechanism>
 *   checksum=<fnv1a-64 hex> mib_s=<bandwidth>
 * where `checksum` is rank 0's buffer after the last round and rank 1's last received
 * buffer, `cma` says whether this rank could read its peer's memory with
 * process_vm_readv (the call vader's CMA path makes), and `single_copy` is the value of
 * Open MPI's btl_vader_single_copy_mechanism after the transfers; `mib_s` is rough (the
 * time includes the checks and rank 1's additions).
 * A wrong byte anywhere makes the rank print "MISMATCH" and exit 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define SIZE (8u << 20)
#define ROUNDS 4

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Byte i as rank 0 holds it after `added` was added to every byte. */
static unsigned char expected(size_t i, unsigned added) {
    return (unsigned char)((i * 31 + 7 + added) & 0xff);
}

static int check(const unsigned char *buf, unsigned added, int rank) {
    for (size_t i = 0; i < SIZE; i++) {
        if (buf[i] != expected(i, added)) {
            printf("rank=%d MISMATCH at byte %zu: %u, expected %u\n", rank, i, buf[i],
                   expected(i, added));
            fflush(stdout);
            return 0;
        }
    }
    return 1;
}

/* Whether this process may read `len` bytes at `addr` in process `pid`: "ok" or the
 * errno's name (EPERM: the kernel's ptrace access check said no; ESRCH: no such pid
 * here, e.g. another PID namespace). */
static const char *probe_cma(pid_t pid, uint64_t addr, uint64_t want) {
    uint64_t got = 0;
    struct iovec local = {&got, sizeof got};
    struct iovec remote = {(void *)(uintptr_t)addr, sizeof got};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n == (ssize_t)sizeof got)
        return got == want ? "ok" : "wrong-data";
    switch (errno) {
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case ENOSYS: return "ENOSYS";
    case EFAULT: return "EFAULT";
    default: return "error";
    }
}

/* Open MPI's btl_vader_single_copy_mechanism as a name, read through the MPI tool
 * interface; "unknown" when this MPI has no such variable. */
static const char *single_copy_mechanism(void) {
    static char name[64] = "unknown";
    int provided, index;
    if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS)
        return name;
    if (MPI_T_cvar_get_index("btl_vader_single_copy_mechanism", &index) == MPI_SUCCESS) {
        char vname[256], desc[1024];
        int vlen = sizeof vname, dlen = sizeof desc, verbosity, bind, scope;
        MPI_Datatype type;
        MPI_T_enum enumtype;
        MPI_T_cvar_handle handle;
        int count, value;
        if (MPI_T_cvar_get_info(index, vname, &vlen, &verbosity, &type, &enumtype, desc,
                                &dlen, &bind, &scope) == MPI_SUCCESS &&
            type == MPI_INT &&
            MPI_T_cvar_handle_alloc(index, NULL, &handle, &count) == MPI_SUCCESS) {
            if (MPI_T_cvar_read(handle, &value) == MPI_SUCCESS) {
                snprintf(name, sizeof name, "%d", value);
                int items;
                if (enumtype != MPI_T_ENUM_NULL &&
                    MPI_T_enum_get_info(enumtype, &items, vname, &vlen) == MPI_SUCCESS) {
                    for (int i = 0; i < items; i++) {
                        char item[64];
                        int v, len = sizeof item;
                        if (MPI_T_enum_get_item(enumtype, i, &v, item, &len) == MPI_SUCCESS &&
                            v == value)
                            snprintf(name, sizeof name, "%s", item);
                    }
                }
            }
            MPI_T_cvar_handle_free(&handle);
        }
    }
    MPI_T_finalize();
    return name;
}

int main(int argc, char **argv) {
    int rank, size;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 2) {
        if (rank == 0)
            printf("needs exactly 2 ranks, got %d\n", size);
        MPI_Finalize();
        return 2;
    }
    int peer = 1 - rank;

    /* CMA probe: swap pids and the address of a known word, read the peer's word. */
    static volatile uint64_t word;
    word = 0x1badc0ffee000000ull + (uint64_t)rank;
    uint64_t mine[2] = {(uint64_t)getpid(), (uint64_t)(uintptr_t)&word}, theirs[2];
    MPI_Sendrecv(mine, 2, MPI_UINT64_T, peer, 1, theirs, 2, MPI_UINT64_T, peer, 1,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    const char *cma = probe_cma((pid_t)theirs[0], theirs[1],
                                0x1badc0ffee000000ull + (uint64_t)peer);
    MPI_Barrier(MPI_COMM_WORLD);

    unsigned char *buf = malloc(SIZE);
    if (!buf) {
        printf("rank=%d out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (size_t i = 0; i < SIZE; i++)
        buf[i] = expected(i, 0);

    int ok = 1;
    unsigned added = 0;
    double t0 = MPI_Wtime();
    for (unsigned r = 1; r <= ROUNDS; r++) {
        if (rank == 0) {
            MPI_Send(buf, SIZE, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(buf, SIZE, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            added += r;
            ok = ok && check(buf, added, rank);
        } else {
            MPI_Recv(buf, SIZE, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            ok = ok && check(buf, added, rank);
            for (size_t i = 0; i < SIZE; i++)
                buf[i] = (unsigned char)(buf[i] + r);
            added += r;
            MPI_Send(buf, SIZE, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        }
    }
    double secs = MPI_Wtime() - t0;
    /* Rank 1 reports the buffer it last received, before its own addition. */
    if (rank == 1)
        for (size_t i = 0; i < SIZE; i++)
            buf[i] = (unsigned char)(buf[i] - ROUNDS);

    printf("rank=%d size=%d pid=%d peer_pid=%llu cma=%s single_copy=%s checksum=%016llx "
           "mib_s=%.0f\n",
           rank, size, (int)getpid(), (unsigned long long)theirs[0], cma,
           single_copy_mechanism(), (unsigned long long)fnv1a(buf, SIZE),
           2.0 * ROUNDS * (SIZE / 1048576.0) / (secs > 0 ? secs : 1e-9));
    fflush(stdout);
    free(buf);
    MPI_Finalize();
    return ok ? 0 : 1;
}
