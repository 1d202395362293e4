//! Regressions of ibuild found by a security and reliability probe, each through the
//! real binaries as root and as the unprivileged test users: the variable-doubling
//! memory bomb, `.dockerignore` and relative contexts under `RUN --mount=type=bind`,
//! errors that name the real problem (damaged store index, a symlink out of the
//! context), ADD of a tar whose entries climb out, a hostile context tar on stdin,
//! temp files left by a build that ran out of space, and a bad Dockerfile that made an
//! empty store before failing.

use std::path::{Path, PathBuf};

use imago_it::{running_as_root, skip, users, Env};

use crate::ibuild_support::{context, env_with_busybox, find, ibuild};

/// The doubling bomb: `ENV A=<1000 chars>`, then 30 × `ENV A=$A$A` (1000 · 2³⁰ bytes
/// unbounded). It must stop at the first line past 1 MiB (line 13), fast and small.
#[test]
fn env_doubling_bomb_fails_fast_naming_its_line() {
    let mut df = format!("FROM busybox\nENV A={}\n", "x".repeat(1000));
    for _ in 0..30 {
        df.push_str("ENV A=$A$A\n");
    }
    for user in users() {
        let env = env_with_busybox(user);
        context(&env, "bomb", &[("Dockerfile", &df)]);
        if !Path::new("/usr/bin/time").exists() {
            skip("/usr/bin/time is not installed: the bomb's time and memory are not measured");
            ibuild(&env, "bomb", &["--progress", "plain"]).fails_with("line 13 `ENV A=$A$A`");
            continue;
        }
        let out = env
            .cmd_path("/usr/bin/time")
            .arg("-v")
            .arg(imago_it::bin("ibuild"))
            .args(["--progress", "plain", "--root"])
            .arg(env.root())
            .arg(env.path("bomb"))
            .run()
            .fails_with("line 13 `ENV A=$A$A`")
            .fails_with("longer than imago's limit of 1048576 bytes");
        let err = out.stderr();
        let field = |name: &str| -> String {
            err.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name:?} in /usr/bin/time's output: {out}"))
                .trim()
                .to_string()
        };
        let rss_kib: u64 = field("Maximum resident set size (kbytes):")
            .parse()
            .expect("RSS");
        let wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss):");
        let secs: f64 = wall
            .rsplit(':')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("seconds");
        let whole_minutes = wall.matches(':').count() > 1 || !wall.starts_with("0:");
        eprintln!("[{}] bomb: {rss_kib} KiB max RSS, {wall} wall", user.name());
        assert!(rss_kib < 100 * 1024, "RSS {rss_kib} KiB: {out}");
        // 1 s is the target (0.2–0.3 s on an idle 2-core VM, debug build); 3 s leaves
        // room for a loaded CI host without letting the exponential blow-up through.
        assert!(!whole_minutes && secs < 3.0, "took {wall}: {out}");
    }
}

/// RUN `--mount=type=bind` of the context shows the context as `.dockerignore` left it,
/// as BuildKit does; the cache follows what the mount shows.
#[test]
fn bind_mount_of_the_context_honours_dockerignore() {
    for user in users() {
        let env = env_with_busybox(user);
        let files = [
            (
                "Dockerfile",
                "FROM busybox\nRUN --mount=type=bind,target=/ctx cd /ctx && find . | sort > /listing\n",
            ),
            (".dockerignore", ".env\nsecret.txt\nkeys\n!keys/public.pem\n"),
            (".env", "TOKEN=hunter2"),
            ("secret.txt", "secret"),
            ("keys/id_rsa", "private"),
            ("keys/public.pem", "public"),
            ("app/main.sh", "echo hi"),
        ];
        context(&env, "ign", &files);
        ibuild(&env, "ign", &["-t", "ign", "--progress", "plain"]).success();
        let seen = listing(&env, "ign");
        for hidden in ["./.env", "./secret.txt", "./keys/id_rsa"] {
            assert!(
                !seen.contains(&hidden.to_string()),
                "{hidden} visible: {seen:?}"
            );
        }
        for shown in ["./Dockerfile", "./app/main.sh", "./keys/public.pem"] {
            assert!(
                seen.contains(&shown.to_string()),
                "{shown} missing: {seen:?}"
            );
        }
        // The filtered copy is gone with the build.
        assert_eq!(store_tmp_entries(&env), Vec::<String>::new());
        // What the mount shows changed: not a cache hit.
        env.write("ign/.dockerignore", ".env\nkeys\n!keys/public.pem\n");
        ibuild(&env, "ign", &["-t", "ign", "--progress", "plain"]).success();
        assert!(listing(&env, "ign").contains(&"./secret.txt".to_string()));
    }
}

/// A relative CONTEXT works with a context bind mount (it used to fail with "bind
/// source `c6` does not exist": the mount is made from another directory).
#[test]
fn bind_mount_with_a_relative_context() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "c6",
            &[
                (
                    "Dockerfile",
                    "FROM busybox\nRUN --mount=type=bind,source=sub,target=/s cp /s/f /copied\n",
                ),
                ("sub/f", "from the context"),
            ],
        );
        // Env::cmd runs in the scratch dir, where `c6` is.
        env.cmd("ibuild")
            .args(["--progress", "plain", "-t", "rel", "--root"])
            .arg(env.root())
            .arg("c6")
            .ok();
        let f = find(&env, "rel", "copied").expect("/copied in a layer");
        assert_eq!(f.data, b"from the context");
    }
}

/// A damaged index.json is reported as such, with `iimage fsck`, not as "`busybox` is
/// not a pullable reference".
#[test]
fn damaged_store_index_is_named() {
    for user in users() {
        let env = env_with_busybox(user);
        context(&env, "idx", &[("Dockerfile", "FROM busybox\nRUN true\n")]);
        // Truncated mid-way, as a crash of a non-atomic writer or a bad copy leaves it.
        std::fs::write(
            env.root().join("index.json"),
            "{\"schemaVersion\":2,\"manif",
        )
        .expect("damage index.json");
        let out = ibuild(&env, "idx", &["--progress", "plain"])
            .fails_with("index")
            .fails_with("damaged")
            .fails_with("iimage fsck");
        assert!(!out.stderr().contains("pullable"), "{out}");
    }
}

/// `COPY link` with `link` pointing out of the context says so.
#[test]
fn copy_of_a_symlink_out_of_the_context_says_why() {
    for user in users() {
        let env = env_with_busybox(user);
        let dir = context(
            &env,
            "lnk",
            &[("Dockerfile", "FROM busybox\nCOPY link /x\n")],
        );
        std::os::unix::fs::symlink("/etc/hostname", dir.join("link")).expect("symlink");
        env.give(&dir.join("link"));
        ibuild(&env, "lnk", &["--progress", "plain"])
            .fails_with("\"/link\": not found: the symlink `link` points outside the build context (to `/etc/hostname`)");
    }
}

/// ADD of a local tar whose entry climbs out (`../../f`): kept inside the destination,
/// which stays searchable (it got the tar file's own 0644 before).
#[test]
fn add_of_a_climbing_tar_keeps_the_destination_searchable() {
    for user in users() {
        let env = env_with_busybox(user);
        let run = "USER 65534\nRUN cat /dst/f\n";
        let dir = context(
            &env,
            "climb",
            &[(
                "Dockerfile",
                &format!("FROM busybox\nADD up.tar /dst/\n{run}"),
            )],
        );
        write_climbing_tar(&dir.join("up.tar"));
        env.give(&dir.join("up.tar"));
        ibuild(&env, "climb", &["-t", "climb", "--progress", "plain"]).success();
        let d = find(&env, "climb", "dst").expect("/dst in a layer");
        assert_eq!(d.mode, 0o755, "/dst mode {:o}", d.mode);
        assert_eq!(find(&env, "climb", "dst/f").expect("/dst/f").data, b"up\n");
    }
}

/// A Dockerfile that does not parse, or a `--target` it lacks, fails (exit 125, the
/// parser's line-numbered error) before the store is opened: a fresh `--root` or
/// `IMAGO_ROOT` is not made into an empty store as a side effect.
#[test]
fn bad_dockerfile_fails_before_making_a_store() {
    for user in users() {
        let env = Env::new(user);
        context(
            &env,
            "bad",
            &[("Dockerfile", "FROM busybox\nRUN true\nBOGUS thing\n")],
        );
        context(&env, "ok", &[("Dockerfile", "FROM busybox AS one\n")]);
        // `ibuild` passes `--root`.
        ibuild(&env, "bad", &["--progress", "plain"])
            .code_is(125)
            .fails_with("unknown instruction: BOGUS")
            .fails_with("Dockerfile:3:1");
        ibuild(&env, "ok", &["--progress", "plain", "--target", "two"])
            .code_is(125)
            .fails_with("target stage \"two\" could not be found");
        assert!(!env.root().exists(), "a store was made at {:?}", env.root());
        // The store from IMAGO_ROOT alone.
        let root = env.path("env-root");
        env.cmd("ibuild")
            .env("IMAGO_ROOT", &root)
            .args(["--progress", "plain"])
            .arg(env.path("bad"))
            .run()
            .code_is(125)
            .fails_with("unknown instruction: BOGUS");
        assert!(!root.exists(), "a store was made at {root:?}");
    }
}

/// A context tar on stdin goes through the hardened unpacker: an entry that climbs out
/// (`../escape`), an absolute name, and a file written through a symlink it made are
/// each refused, by name, and nothing lands outside the context dir.
#[test]
fn hostile_context_tar_on_stdin_is_refused() {
    let abs = format!("/tmp/imago-ctx-abs-{}", std::process::id());
    for user in users() {
        let env = env_with_busybox(user);
        let outside = env.mkdir("outside");
        let dockerfile = (
            b"Dockerfile".to_vec(),
            Raw::File(b"FROM busybox\nCOPY . /c/\n"),
        );
        let escape = (b"../escape".to_vec(), Raw::File(b"x"));
        let absolute = (abs.as_bytes().to_vec(), Raw::File(b"x"));
        let link = (b"l".to_vec(), Raw::Symlink(outside.clone()));
        let through = (b"l/through".to_vec(), Raw::File(b"x"));
        let cases = [
            (
                "all",
                vec![
                    dockerfile.clone(),
                    escape.clone(),
                    absolute.clone(),
                    link.clone(),
                    through.clone(),
                ],
                "../escape",
            ),
            ("escape", vec![dockerfile.clone(), escape], "../escape"),
            ("absolute", vec![dockerfile.clone(), absolute], &abs[..]),
            ("symlink", vec![dockerfile, link, through], "l/through"),
        ];
        for (name, entries, refused) in cases {
            let tar = env.path(&format!("{name}.tar"));
            write_raw_tar(&tar, &entries);
            env.give(&tar);
            env.cmd("ibuild")
                .args(["--progress", "plain", "--root"])
                .arg(env.root())
                .arg("-")
                .stdin(std::fs::File::open(&tar).expect("open tar"))
                .run()
                .code_is(125)
                .fails_with(&format!("refused layer entry `{refused}`"));
            assert!(
                !outside.join("through").exists(),
                "{name}: wrote through the symlink"
            );
            assert!(!Path::new(&abs).exists(), "{name}: wrote the absolute path");
            assert!(
                !env.root().join("imago/escape").exists(),
                "{name}: climbed out"
            );
            assert!(
                !env.root().join("imago/tmp/escape").exists(),
                "{name}: climbed out"
            );
            assert_eq!(store_tmp_entries(&env), Vec::<String>::new(), "{name}");
        }
    }
}

/// A build that runs out of space while packing a RUN layer leaves no temp file in the
/// store, and the store is as it was (and fsck-clean).
#[test]
fn enospc_build_leaves_the_store_as_it_was() {
    if !running_as_root() {
        skip("not root: cannot mount the small tmpfs this test needs");
        return;
    }
    for user in users() {
        let env = Env::new(user);
        let _mount = SmallFs::mount(&env, &env.root(), "16m");
        let tar = env.busybox_tar();
        env.cmd("iimage")
            .args(["import", "--change", "CMD [\"sh\"]"])
            .arg(&tar)
            .arg("busybox")
            .ok();
        // Warm up: unpacks busybox's layer, so the failing build below only adds
        // temp files.
        context(&env, "warm", &[("Dockerfile", "FROM busybox\nRUN true\n")]);
        ibuild(&env, "warm", &["--progress", "plain"]).success();
        let before = tree_listing(&env.root());
        // Random data: the upper dir gets 60% of the free space, and its compressed
        // layer (as big) cannot fit next to it.
        let kib = avail_kib(&env.root()) * 6 / 10;
        context(
            &env,
            "full",
            &[(
                "Dockerfile",
                &format!("FROM busybox\nRUN dd if=/dev/urandom of=/big bs=1k count={kib}\n"),
            )],
        );
        ibuild(&env, "full", &["--progress", "plain"])
            .code_is(125)
            .fails_with("No space left on device");
        assert_eq!(store_tmp_entries(&env), Vec::<String>::new());
        assert_eq!(tree_listing(&env.root()), before);
        env.cmd("iimage").arg("fsck").ok();
    }
}

/// The sorted `find` listing a build wrote to /listing.
fn listing(env: &Env, image: &str) -> Vec<String> {
    let f = find(env, image, "listing").expect("/listing in a layer");
    String::from_utf8_lossy(&f.data)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The names in the store's temp dir.
fn store_tmp_entries(env: &Env) -> Vec<String> {
    let tmp = env.root().join("imago/tmp");
    let mut v: Vec<String> = std::fs::read_dir(&tmp)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every path under `root` with its size (files) — what "the store is as before" means.
fn tree_listing(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read store dir").flatten() {
            let md = e.metadata().expect("stat");
            let rel = e
                .path()
                .strip_prefix(root)
                .expect("under root")
                .to_path_buf();
            if md.is_dir() && !e.file_type().expect("type").is_symlink() {
                // Unpacked layer trees are only read by a build; their contents are
                // fixed by their chain id, the dir's presence is what counts.
                if !rel.starts_with("imago/layers") || rel.components().count() < 3 {
                    stack.push(e.path());
                }
                out.push((rel, 0));
            } else {
                out.push((rel, md.len()));
            }
        }
    }
    out.sort();
    out
}

fn avail_kib(p: &Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["-k", "--output=avail"])
        .arg(p)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("df's avail")
}

/// A tar with one file entry named `../../f` (the tar crate refuses to write such a
/// name, other tar writers do not).
fn write_climbing_tar(path: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(path).expect("create tar"));
    let mut h = tar::Header::new_ustar();
    h.as_ustar_mut().expect("ustar header").name[..7].copy_from_slice(b"../../f");
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"up\n"[..]).expect("append");
    b.finish().expect("finish tar");
}

/// What a raw tar entry is.
#[derive(Clone)]
enum Raw {
    File(&'static [u8]),
    Symlink(PathBuf),
}

/// A tar with entry names written as given (`..` and absolute ones included, which the
/// tar crate's path setters refuse).
fn write_raw_tar(path: &Path, entries: &[(Vec<u8>, Raw)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).expect("create tar"));
    for (name, what) in entries {
        let mut h = tar::Header::new_gnu();
        assert!(name.len() <= 100, "raw names fit the name field");
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_mode(0o644);
        match what {
            Raw::File(data) => {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, *data).expect("append");
            }
            Raw::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_link_name(target).expect("link name");
                h.set_cksum();
                b.append(&h, std::io::empty()).expect("append");
            }
        }
    }
    b.finish().expect("finish tar");
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(env: &Env, at: &Path, size: &str) -> SmallFs {
        std::fs::create_dir_all(at).expect("mkdir mount point");
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("tmpfs")
            .arg(at)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount a tmpfs on {}", at.display());
        env.give(at);
        SmallFs(at.to_path_buf())
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Ignoring a failure: the scratch dir's removal then reports the busy mount.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A loopback HTTP server that answers every GET with the headers of a 1 MB body and
/// then stalls (`trickle == false`: 10 bytes, then nothing) or trickles (a byte every
/// 500 ms). Each connection is held at most 60 s, so a client that never gives up
/// cannot keep the test running for ever.
fn slow_http_server(trickle: bool) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(16) {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut head = [0u8; 4096];
                // Ignoring what the request says: every request gets the same answer.
                let _ = conn.read(&mut head);
                let headers = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
                if conn.write_all(headers.as_bytes()).is_err() {
                    return;
                }
                let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
                if !trickle {
                    // A write error only means the client went away, which ends the case.
                    let _ = conn.write_all(&[b'x'; 10]);
                    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(60)));
                    let _ = conn.read(&mut head); // returns when the client closes
                    return;
                }
                while std::time::Instant::now() < until {
                    if conn.write_all(b"x").is_err() {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
            });
        }
    });
    addr
}

/// ADD of a URL whose server stops sending, or trickles under the rate floor, fails the
/// build within the registry client's bounds (set small here through the documented
/// environment variables), naming the host. Before, ADD URL ignored those settings and
/// had no rate floor: a trickle ran until the server gave up.
#[test]
fn add_url_from_a_stalled_or_trickling_server_fails_in_bounded_time() {
    for trickle in [false, true] {
        let addr = slow_http_server(trickle);
        for user in users() {
            let env = env_with_busybox(user);
            let df = format!("FROM busybox\nADD http://{addr}/big.bin /big.bin\n");
            context(&env, "url", &[("Dockerfile", &df)]);
            let started = std::time::Instant::now();
            let out = env
                .cmd("ibuild")
                .args(["--progress", "plain", "--root"])
                .arg(env.root())
                .arg(env.path("url"))
                .env("IMAGO_REGISTRY_STALL_TIMEOUT", "3")
                .env("IMAGO_REGISTRY_RATE_WINDOW", "3")
                .run();
            let took = started.elapsed();
            let out = out.fails_with(&format!("{addr} sent"));
            assert!(
                took < std::time::Duration::from_secs(15),
                "[{}] trickle={trickle}: took {took:?}: {out}",
                user.name()
            );
        }
    }
}
