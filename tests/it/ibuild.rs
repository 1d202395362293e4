//! ibuild through the real binaries, as root and as the unprivileged users: one test per
//! docs/semantics.md item of sections E–H and J–K that runs offline (named by item id), and
//! the cross-cutting checks (cache, SOURCE_DATE_EPOCH, rootless chown, failures,
//! concurrency, examples).

use imago_it::{users, User};

use crate::ibuild_support::{
    config, context, env_with_busybox, find, ibuild, image_id, irun, layers,
};

fn has_subids(user: User) -> bool {
    user != User::NoSub
}

#[test]
fn j102_j105_k110_k116_metadata_instructions_config_and_history() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "meta",
            &[(
                "Dockerfile",
                "FROM busybox\nARG PORTS=\"3000 4000/udp\"\nENV A=1 B=\"two words\"\nENV A=3\nLABEL l1=v1 \"l 2\"=v2\nEXPOSE $PORTS\nEXPOSE 5000\n\
                 VOLUME /data [\"/other\"]\nSTOPSIGNAL SIGKILL\nHEALTHCHECK --interval=1s --retries=3 CMD wget -q localhost\n\
                 USER nobody\nMAINTAINER me@example.com\nONBUILD RUN echo triggered\nSHELL [\"/bin/sh\", \"-xc\"]\nENTRYPOINT [\"/bin/echo\"]\nCMD hello\n",
            )],
        );
        ibuild(&env, "meta", &["-t", "meta"]).success();
        let c = config(&env, "meta");
        let cc = &c["config"];
        assert_eq!(cc["Env"][1], "A=3", "{c}");
        assert_eq!(cc["Env"][2], "B=two words", "{c}");
        assert_eq!(cc["Labels"]["l 2"], "v2");
        let ports: Vec<&String> = cc["ExposedPorts"].as_object().unwrap().keys().collect();
        assert_eq!(ports, ["3000/tcp", "4000/udp", "5000/tcp"]);
        assert_eq!(cc["StopSignal"], "SIGKILL");
        assert_eq!(
            cc["Healthcheck"]["Test"],
            serde_json::json!(["CMD-SHELL", "wget -q localhost"])
        );
        assert_eq!(cc["Healthcheck"]["Interval"], 1_000_000_000u64);
        assert_eq!(cc["User"], "nobody");
        assert_eq!(cc["OnBuild"], serde_json::json!(["RUN echo triggered"]));
        assert_eq!(cc["Entrypoint"], serde_json::json!(["/bin/echo"]));
        // J103: CMD in shell form under the SHELL set before it.
        assert_eq!(cc["Cmd"], serde_json::json!(["/bin/sh", "-xc", "hello"]));
        assert_eq!(c["author"], "me@example.com");
        assert!(cc["Volumes"].get("/data").is_some());
        // ARG values stay out of Env (37).
        assert!(!cc["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("PORTS=")));
        let hist: Vec<String> = c["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["created_by"].as_str().map(String::from))
            .collect();
        for want in [
            "ENV A=1 B=two words",
            "EXPOSE map[3000/tcp:{} 4000/udp:{}]",
            "STOPSIGNAL SIGKILL",
            "ENTRYPOINT [\"/bin/echo\"]",
            "CMD [\"/bin/sh\" \"-xc\" \"hello\"]",
        ] {
            assert!(
                hist.iter().any(|h| h == want),
                "history lacks {want:?}: {hist:?}"
            );
        }
        assert!(c["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["comment"] == "buildkit.dockerfile.v0")
            .all(|h| h["empty_layer"] == true));
    }
}

#[test]
fn e47_scratch_and_d46_default_path_and_f59_workdir_created() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "s",
            &[
                ("Dockerfile", "FROM scratch\nWORKDIR /foo/bar\nCOPY f /f\n"),
                ("f", "x"),
            ],
        );
        ibuild(&env, "s", &["-t", "s"]).success();
        let c = config(&env, "s");
        assert_eq!(
            c["config"]["Env"],
            serde_json::json!([
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ])
        );
        assert_eq!(c["config"]["WorkingDir"], "/foo/bar");
        assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 2, "{c}");
        assert_eq!(
            find(&env, "s", "foo/bar").expect("workdir in a layer").kind,
            'd'
        );
        assert_eq!(find(&env, "s", "f").expect("f").data, b"x");
    }
}

#[test]
fn e48_e49_multistage_by_name_and_index_and_smaller_final() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "ms",
            &[(
                "Dockerfile",
                "FROM busybox AS STAge0\nRUN echo built > /out && dd if=/dev/zero of=/big bs=1k count=200 2>/dev/null\n\
                 FROM scratch\nCOPY --from=staGE0 /out /a\nCOPY --from=0 /out /b\n",
            )],
        );
        ibuild(&env, "ms", &["-t", "ms"]).success();
        assert_eq!(find(&env, "ms", "a").unwrap().data, b"built\n");
        assert_eq!(find(&env, "ms", "b").unwrap().data, b"built\n");
        assert!(find(&env, "ms", "big").is_none());
    }
}

#[test]
fn e50_e51_e52_stage_errors() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "later",
            &[(
                "Dockerfile",
                "FROM busybox AS first\nCOPY --from=later /x /x\nFROM busybox AS later\n",
            )],
        );
        ibuild(&env, "later", &["--target", "first"])
            .fails_with("needs to be defined before current stage");
        context(
            &env,
            "cyc",
            &[(
                "Dockerfile",
                "FROM busybox AS stage0\nCOPY --from=stage0 /x /x\n",
            )],
        );
        ibuild(&env, "cyc", &[]).fails_with("circular dependency detected on stage: stage0");
        context(
            &env,
            "tgt",
            &[("Dockerfile", "FROM busybox AS build\nFROM busybox AS Foo\n")],
        );
        ibuild(&env, "tgt", &["--target", "bulid"])
            .fails_with("target stage \"bulid\" could not be found (did you mean build?)");
        ibuild(&env, "tgt", &["--target", "FOO", "-t", "t"]).success();
    }
}

#[test]
fn e53_only_needed_stages_are_built() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "u",
            &[(
                "Dockerfile",
                "FROM busybox AS unused\nRUN false\nFROM busybox\nRUN echo ok > /ok\n",
            )],
        );
        let out = ibuild(&env, "u", &["-t", "u"]).success();
        assert!(!out.stderr().contains("RUN false"), "{out}");
        assert_eq!(find(&env, "u", "ok").unwrap().data, b"ok\n");
    }
}

#[test]
fn e54_empty_from_fails() {
    for user in users() {
        let env = env_with_busybox(user);
        context(&env, "e", &[("Dockerfile", "FROM ${UNSET}\n")]);
        ibuild(&env, "e", &[]).fails_with("should not be blank");
    }
}

#[test]
fn e56_f63_copy_from_sibling_files_not_config_relative_to_stage_root() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "sib",
            &[(
                "Dockerfile",
                "FROM busybox AS base\nLABEL marker=base\nFROM base AS sibling\nLABEL marker=sibling\nRUN echo s > /s\n\
                 FROM base AS consumer\nCOPY --from=sibling /s /s\n",
            )],
        );
        ibuild(&env, "sib", &["-t", "sib"]).success();
        assert_eq!(config(&env, "sib")["config"]["Labels"]["marker"], "base");
        assert_eq!(find(&env, "sib", "s").unwrap().data, b"s\n");
        // F63: a relative source of COPY --from is taken from the stage's root, not its
        // WORKDIR; a relative destination is under the current WORKDIR.
        context(
            &env,
            "rel",
            &[(
                "Dockerfile",
                "FROM busybox AS a\nRUN mkdir -p /w && echo root > /f && echo wd > /w/f\nWORKDIR /w\n\
                 FROM busybox\nWORKDIR /dst\nCOPY --from=a f got\n",
            )],
        );
        ibuild(&env, "rel", &["-t", "rel"]).success();
        assert_eq!(find(&env, "rel", "dst/got").unwrap().data, b"root\n");
    }
}

#[test]
fn e58_label_build_option() {
    for user in users() {
        let env = env_with_busybox(user);
        context(&env, "l", &[("Dockerfile", "FROM busybox\nLABEL a=1\n")]);
        ibuild(&env, "l", &["-t", "l", "--label", "a=2", "--label", "b=3"]).success();
        let c = config(&env, "l");
        assert_eq!(c["config"]["Labels"]["a"], "2");
        assert_eq!(c["config"]["Labels"]["b"], "3");
    }
}

#[test]
fn f60_f62_relative_workdir_with_env() {
    for user in users() {
        let env = env_with_busybox(user);
        context(&env, "w", &[("Dockerfile", "FROM busybox\nENV P=/test1\nWORKDIR $P\nWORKDIR test2\nRUN pwd > /pwd\nWORKDIR ..\n")]);
        ibuild(&env, "w", &["-t", "w"]).success();
        assert_eq!(find(&env, "w", "pwd").unwrap().data, b"/test1/test2\n");
        assert_eq!(config(&env, "w")["config"]["WorkingDir"], "/test1");
    }
}

#[test]
fn f61_workdir_owned_by_user_and_g77_g78_copy_ownership() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "own",
            &[
                ("Dockerfile", "FROM busybox\nCOPY a /plain/a\nCOPY --chown=www-data b /chowned/b\nCOPY --chown=1000:nogroup b /num/b\nUSER www-data\nWORKDIR /w\n"),
                ("a", "a"),
                ("b", "b"),
            ],
        );
        ibuild(&env, "own", &["-t", "own"]).success();
        let e = |p: &str| find(&env, "own", p).unwrap_or_else(|| panic!("{p} missing"));
        assert_eq!(
            (e("plain").uid, e("plain/a").uid, e("plain/a").gid),
            (0, 0, 0)
        );
        assert_eq!((e("chowned/b").uid, e("chowned/b").gid), (33, 33));
        assert_eq!(
            (e("chowned").uid, e("chowned").gid),
            (33, 33),
            "dirs COPY creates get --chown"
        );
        assert_eq!((e("num/b").uid, e("num/b").gid), (1000, 65534));
        assert_eq!(
            (e("w").uid, e("w").gid),
            (33, 33),
            "WORKDIR made by USER www-data"
        );
    }
}

#[test]
fn f64_f67_user_ids_in_run() {
    for user in users() {
        // Without a subuid range each RUN's one mapped id is its USER.
        let env = env_with_busybox(user);
        context(
            &env,
            "ids",
            &[("Dockerfile", "FROM busybox\nRUN id -u > /root-id\nUSER www-data\nRUN id -u > /tmp/a; id -g >> /tmp/a\nUSER 1042:1043\nRUN id -u > /tmp/b; id -g >> /tmp/b\nUSER root\nRUN cat /tmp/a /tmp/b > /ids\n")],
        );
        ibuild(&env, "ids", &["-t", "ids"]).success();
        assert_eq!(find(&env, "ids", "root-id").unwrap().data, b"0\n");
        assert_eq!(
            String::from_utf8_lossy(&find(&env, "ids", "ids").unwrap().data),
            "33\n33\n1042\n1043\n"
        );
    }
}

#[test]
fn g69_g75_copy_paths_and_wildcards() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "cp",
            &[
                (
                    "Dockerfile",
                    "FROM busybox\nCOPY f /sample/\nCOPY foo /foo2\nCOPY sub/dir1 /d6\nCOPY *.go /gofiles/\nCOPY foo nomatch* /m/\nENV e=\"\"\nWORKDIR /wd\nCOPY f $e\nCOPY . /all/\n",
                ),
                ("f", "f"),
                ("foo", "foo"),
                ("sub/dir1/dir2/foo", "deep"),
                ("a.go", "a"),
                ("b.go", "b"),
                (".dockerignore", "b.go\n"),
            ],
        );
        ibuild(&env, "cp", &["-t", "cp"]).success();
        let has = |p: &str| find(&env, "cp", p).is_some();
        assert!(
            has("sample/f")
                && has("foo2")
                && has("d6/dir2/foo")
                && has("gofiles/a.go")
                && has("m/foo")
                && has("wd/f")
                && has("all/sub/dir1/dir2/foo")
        );
        assert!(
            !has("gofiles/b.go") && !has("all/b.go"),
            ".dockerignore applies"
        );
        assert!(!has("d6/dir1"), "a dir source copies its contents");
    }
}

#[test]
fn g79_g80_chmod() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "cm",
            &[
                (
                    "Dockerfile",
                    "FROM busybox\nCOPY --chmod=770 f /p/sub/f\nCOPY --chmod=go-w g /g\n",
                ),
                ("f", "f"),
                ("g", "g"),
            ],
        );
        ibuild(&env, "cm", &["-t", "cm"]).success();
        assert_eq!(find(&env, "cm", "p/sub/f").unwrap().mode, 0o770);
        assert_eq!(find(&env, "cm", "p/sub").unwrap().mode, 0o770);
        let g = find(&env, "cm", "g").unwrap().mode;
        assert_eq!(g & 0o022, 0, "{g:o}");
        context(
            &env,
            "cmbad",
            &[
                ("Dockerfile", "FROM busybox\nCOPY --chmod=64a f /f\n"),
                ("f", "f"),
            ],
        );
        ibuild(&env, "cmbad", &[]).fails_with("invalid chmod parameter: '64a'");
    }
}

#[test]
fn g83_parents_and_g85_exclude() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "pe",
            &[
                (
                    "Dockerfile",
                    "FROM busybox\nCOPY --parents foo1/foo2/bar /\nCOPY --exclude=*.txt d /o/\n",
                ),
                ("foo1/foo2/bar", "bar"),
                ("d/a.txt", "a"),
                ("d/b.md", "b"),
            ],
        );
        ibuild(&env, "pe", &["-t", "pe"]).success();
        assert!(find(&env, "pe", "foo1/foo2/bar").is_some());
        assert!(find(&env, "pe", "o/b.md").is_some() && find(&env, "pe", "o/a.txt").is_none());
    }
}

#[test]
fn g86_url_for_copy_and_missing_source_fail() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "url",
            &[("Dockerfile", "FROM busybox\nCOPY http://example.com/x /x\n")],
        );
        ibuild(&env, "url", &[]).fails_with("source can't be a URL for COPY");
        context(
            &env,
            "miss",
            &[("Dockerfile", "FROM busybox\nCOPY nothere /x\n")],
        );
        let out = ibuild(&env, "miss", &[]).fails_with("\"/nothere\": not found");
        assert!(out.stderr().contains("line 2"), "{out}");
    }
}

#[test]
fn g89_copy_heredoc_and_j107_run_heredoc() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "hd",
            &[(
                "Dockerfile",
                "FROM busybox\nARG NAME=world\nCOPY <<EOF /greeting\nhello ${NAME}\nEOF\nRUN <<EOF\necho from heredoc > /run-out\nEOF\nRUN <<EOF\n#!/bin/sh\necho shebang > /sb\nEOF\n",
            )],
        );
        ibuild(&env, "hd", &["-t", "hd"]).success();
        assert_eq!(find(&env, "hd", "greeting").unwrap().data, b"hello world\n");
        assert_eq!(find(&env, "hd", "run-out").unwrap().data, b"from heredoc\n");
        assert_eq!(find(&env, "hd", "sb").unwrap().data, b"shebang\n");
    }
}

#[test]
fn h92_h93_add_local_tar() {
    for user in users() {
        let env = env_with_busybox(user);
        let d = context(
            &env,
            "add",
            &[
                (
                    "Dockerfile",
                    "FROM busybox\nADD t.tar.gz /dest\nADD --unpack=false t.tar.gz /keep/\n",
                ),
                ("in/x", "x"),
            ],
        );
        let st = std::process::Command::new("tar")
            .arg("-C")
            .arg(&d)
            .arg("-czf")
            .arg(d.join("t.tar.gz"))
            .arg("in")
            .status()
            .unwrap();
        assert!(st.success());
        env.give(&d.join("t.tar.gz"));
        ibuild(&env, "add", &["-t", "add"]).success();
        assert_eq!(find(&env, "add", "dest/in/x").unwrap().data, b"x");
        assert!(find(&env, "add", "keep/t.tar.gz").is_some());
    }
}

#[test]
fn j106_run_ignores_entrypoint_and_exec_form_unexpanded() {
    for user in users() {
        let env = env_with_busybox(user);
        context(&env, "ep", &[("Dockerfile", "FROM busybox\nENTRYPOINT [\"/nosuchcmd\"]\nENV HOME=/h\nRUN [\"sh\", \"-c\", \"echo '$HOME' $HOME > /o\"]\n")]);
        ibuild(&env, "ep", &["-t", "ep"]).success();
        assert_eq!(find(&env, "ep", "o").unwrap().data, b"$HOME /h\n");
    }
}

#[test]
fn j108_run_mounts_cache_tmpfs_bind() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "mnt",
            &[
                (
                    "Dockerfile",
                    "FROM busybox\nRUN --mount=type=cache,target=/cache echo x >> /cache/log && wc -l < /cache/log > /count\n\
                     RUN --mount=type=tmpfs,target=/scratch touch /scratch/t && ls /scratch > /seen\n\
                     RUN --mount=target=/ctx cat /ctx/data > /copied\n\
                     RUN --mount=type=cache,target=/c2,uid=33,gid=33,mode=0751 stat -c '%u %g %a' /c2 > /cstat\n",
                ),
                ("data", "from-context"),
            ],
        );
        ibuild(&env, "mnt", &["-t", "mnt"]).success();
        assert_eq!(find(&env, "mnt", "count").unwrap().data, b"1\n");
        assert_eq!(find(&env, "mnt", "copied").unwrap().data, b"from-context");
        assert!(
            find(&env, "mnt", "scratch/t").is_none(),
            "tmpfs content is not in a layer"
        );
        if has_subids(user) {
            assert_eq!(find(&env, "mnt", "cstat").unwrap().data, b"33 33 751\n");
        }
        // The cache mount persists across builds (a --no-cache rebuild runs it again).
        ibuild(&env, "mnt", &["-t", "mnt", "--no-cache"]).success();
        assert_eq!(find(&env, "mnt", "count").unwrap().data, b"2\n");
    }
}

#[test]
fn j109_secret_never_in_a_layer() {
    for user in users() {
        let env = env_with_busybox(user);
        let d = context(
            &env,
            "sec",
            &[(
                "Dockerfile",
                "FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /used\nRUN --mount=type=secret,id=tok,env=TOK echo \"$TOK\" > /env-used\n",
            )],
        );
        let secret = env.write("tok.txt", "s3cret");
        let out = ibuild(
            &env,
            "sec",
            &[
                "-t",
                "sec",
                "--secret",
                &format!("id=tok,src={}", secret.display()),
            ],
        )
        .success();
        let _ = (d, out);
        assert_eq!(find(&env, "sec", "used").unwrap().data, b"s3cret");
        assert_eq!(find(&env, "sec", "env-used").unwrap().data, b"s3cret\n");
        let c = config(&env, "sec");
        assert!(
            !c.to_string().contains("s3cret"),
            "the secret is not in the config or history"
        );
        assert!(find(&env, "sec", "run/secrets/tok").is_none());
    }
}

#[test]
fn k117_k118_onbuild_triggers_run_once() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "ob1",
            &[(
                "Dockerfile",
                "FROM busybox\nONBUILD RUN echo -n 1 >> /foo\n",
            )],
        );
        ibuild(&env, "ob1", &["-t", "ob-base"]).success();
        context(&env, "ob2", &[("Dockerfile", "FROM ob-base\nRUN true\n")]);
        ibuild(&env, "ob2", &["-t", "ob-child"]).success();
        context(
            &env,
            "ob3",
            &[("Dockerfile", "FROM ob-child\nRUN echo -n 1 >> /foo\n")],
        );
        ibuild(&env, "ob3", &["-t", "ob-grand"]).success();
        assert_eq!(find(&env, "ob-grand", "foo").unwrap().data, b"11");
        // K118: in one Dockerfile, `FROM base AS mid` runs base's triggers once and a
        // stage FROM mid does not run them again.
        context(
            &env,
            "ob4",
            &[(
                "Dockerfile",
                "FROM busybox AS base\nONBUILD RUN echo -n x >> /t\nFROM base AS mid\nFROM mid\nRUN cat /t > /seen\n",
            )],
        );
        ibuild(&env, "ob4", &["-t", "ob4"]).success();
        assert_eq!(find(&env, "ob4", "seen").unwrap().data, b"x");
        assert!(config(&env, "ob-child")["config"].get("OnBuild").is_none());
    }
}

#[test]
fn k120_source_date_epoch_gives_the_same_digest() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "sde",
            &[
                (
                    "Dockerfile",
                    "FROM busybox\nWORKDIR /app\nCOPY f .\nRUN echo built > /b\nCMD [\"sh\"]\n",
                ),
                ("f", "f"),
            ],
        );
        ibuild(
            &env,
            "sde",
            &["-t", "sde1", "--source-date-epoch", "1700000000"],
        )
        .success();
        let a = image_id(&env, "sde1");
        ibuild(&env, "sde", &["-t", "sde2", "--no-cache"]).code_is(0);
        let out = env
            .cmd("ibuild")
            .args(["--no-cache", "-q", "-t", "sde3"])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .arg(env.path("sde"))
            .ok();
        assert_eq!(
            out.stdout().trim(),
            a,
            "same inputs + SOURCE_DATE_EPOCH → same image id"
        );
        assert_ne!(image_id(&env, "sde2"), a);
        assert_eq!(config(&env, "sde3")["created"], "2023-11-14T22:13:20Z");
    }
}

#[test]
fn cache_unchanged_file_runs_nothing_mtime_hits_content_misses() {
    for user in users() {
        let env = env_with_busybox(user);
        let df = "FROM busybox\nRUN echo 1 > /1\nCOPY a /a\nRUN echo 2 > /2\nWORKDIR /w\nRUN echo 3 > /3\nCOPY b /b\nRUN cat /b > /b2\nRUN echo 4 > /4\nRUN echo 5 > /5\n";
        let d = context(&env, "c", &[("Dockerfile", df), ("a", "a"), ("b", "b")]);
        let first = ibuild(&env, "c", &["-t", "c"]).success();
        assert_eq!(first.stderr().matches("CACHED").count(), 0, "{first}");
        let id1 = image_id(&env, "c");
        let again = ibuild(&env, "c", &["-t", "c"]).success();
        assert_eq!(
            again.stderr().matches("CACHED").count(),
            9,
            "every step after FROM is a hit: {again}"
        );
        assert_eq!(
            image_id(&env, "c"),
            id1,
            "an all-cached rebuild gives the same image"
        );
        // mtime only: still a hit.
        let t = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(d.join("b"))
            .unwrap()
            .set_modified(t)
            .unwrap();
        let touched = ibuild(&env, "c", &["-t", "c"]).success();
        assert_eq!(touched.stderr().matches("CACHED").count(), 9, "{touched}");
        // Content change of b: rebuilt from its COPY on (COPY b + 2 RUNs + ... = 4 steps).
        std::fs::write(d.join("b"), "changed").unwrap();
        let changed = ibuild(&env, "c", &["-t", "c"]).success();
        assert_eq!(changed.stderr().matches("CACHED").count(), 5, "{changed}");
        assert_eq!(find(&env, "c", "b2").unwrap().data, b"changed");
    }
}

#[test]
fn failed_build_names_step_line_code_and_keeps_tag_and_cache() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "f",
            &[("Dockerfile", "FROM busybox\nRUN echo ok > /ok\n")],
        );
        ibuild(&env, "f", &["-t", "keep"]).success();
        let before = image_id(&env, "keep");
        std::fs::write(
            env.path("f/Dockerfile"),
            "FROM busybox\nRUN echo ok > /ok\nRUN exit 3\n",
        )
        .unwrap();
        let out = ibuild(&env, "f", &["-t", "keep"]).fails_with("exit code: 3");
        assert!(
            out.stderr().contains("line 3") && out.stderr().contains("RUN exit 3"),
            "{out}"
        );
        assert_eq!(
            image_id(&env, "keep"),
            before,
            "a failed build leaves the tag alone"
        );
        std::fs::write(
            env.path("f/Dockerfile"),
            "FROM busybox\nRUN echo ok > /ok\nRUN exit 0\n",
        )
        .unwrap();
        let out = ibuild(&env, "f", &["-t", "keep"]).success();
        assert!(
            out.stderr().contains("CACHED"),
            "the step before the failure stayed cached: {out}"
        );
    }
}

#[test]
fn two_builds_at_once_on_one_store() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "p1",
            &[
                ("Dockerfile", "FROM busybox\nRUN echo one > /x\nCOPY f /f\n"),
                ("f", "1"),
            ],
        );
        context(
            &env,
            "p2",
            &[
                ("Dockerfile", "FROM busybox\nRUN echo two > /x\nCOPY f /f\n"),
                ("f", "2"),
            ],
        );
        let spawn = |dir: &str, tag: &str| {
            let mut c = env.cmd("ibuild").args(["-t", tag]).arg(env.path(dir));
            c.command()
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn ibuild")
        };
        let (a, b) = (spawn("p1", "p1"), spawn("p2", "p2"));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
        assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
        assert_eq!(find(&env, "p1", "x").unwrap().data, b"one\n");
        assert_eq!(find(&env, "p2", "x").unwrap().data, b"two\n");
        env.cmd("iimage").arg("fsck").ok();
    }
}

#[test]
fn rootless_run_chown_33_is_committed_as_33() {
    for user in users() {
        // Without a subuid range (single mapping) the recording fakeroot records the
        // chown (user.containers.override_stat) and the commit writes it: 33 for all,
        // on every storage driver (the FUSE root of a single-mapped container lets the
        // supervisor in: docs/layers.md).
        let want = 33;
        let env = env_with_busybox(user);
        context(
            &env,
            "ch",
            &[(
                "Dockerfile",
                "FROM busybox\nRUN mkdir /x && echo hi > /x/f && chown -R 33:33 /x && rm /bin/vi\n",
            )],
        );
        ibuild(&env, "ch", &["-t", "ch"]).success();
        let top = layers(&env, "ch").pop().unwrap();
        let x = top.iter().find(|e| e.path == "x").expect("x");
        let f = top.iter().find(|e| e.path == "x/f").expect("x/f");
        assert_eq!(
            (x.uid, x.gid, f.uid, f.gid),
            (want, want, want, want),
            "{}",
            user.name()
        );
        assert!(
            top.iter().any(|e| e.path == "bin/.wh.vi"),
            "a deletion is a whiteout: {top:?}"
        );
        assert!(
            !top.iter().any(|e| e.path.starts_with("etc")),
            "no mount-point debris: {top:?}"
        );
    }
}

#[test]
fn quiet_prints_only_the_id_and_context_from_stdin() {
    for user in users() {
        let env = env_with_busybox(user);
        let d = context(
            &env,
            "q",
            &[
                ("Dockerfile", "FROM busybox\nCOPY f /f\nRUN echo noisy\n"),
                ("f", "f"),
            ],
        );
        let out = env.cmd("ibuild").args(["-q", "-t", "q"]).arg(&d).ok();
        assert_eq!(out.stdout().trim(), image_id(&env, "q"));
        assert!(!out.stdout().contains("noisy"));
        let tar = env.path("q.tar");
        let st = std::process::Command::new("tar")
            .arg("-C")
            .arg(&d)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        env.give(&tar);
        let out = env
            .cmd("ibuild")
            .args(["-q", "-t", "q2", "-"])
            .stdin(std::fs::File::open(&tar).unwrap())
            .ok();
        assert_eq!(
            out.stdout().trim(),
            image_id(&env, "q"),
            "same context → same image (cached)"
        );
    }
}

#[test]
fn examples_build_and_run() {
    let ex = imago_it::repo_root().join("examples");
    for user in users() {
        let env = env_with_busybox(user);
        for (dir, tag) in [
            ("cowsay", "cowsay"),
            ("website", "website"),
            ("website-multistage", "website-ms"),
        ] {
            copy_tree(&env, &ex.join(dir), &env.path(dir));
            ibuild(&env, dir, &["-t", tag]).success();
        }
        let c = config(&env, "website");
        assert_eq!(c["config"]["WorkingDir"], "/www");
        assert!(c["config"]["ExposedPorts"].get("8080/tcp").is_some());
        assert_eq!(c["config"]["Cmd"][0], "/bin/sh");
        let size =
            |n: &str| -> usize { layers(&env, n).iter().flatten().map(|e| e.data.len()).sum() };
        assert!(
            size("website-ms") < size("website"),
            "the multi-stage image is smaller"
        );
        let out = irun(&env, "cowsay", &[]);
        assert_eq!(out.code(), Some(0), "{out}");
        assert!(out.stdout().contains("moo"), "{out}");
        let out = irun(&env, "cowsay", &["hello"]);
        assert!(out.stdout().contains("hello"), "{out}");
    }
}

fn copy_tree(env: &imago_it::Env, from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    env.give(to);
    for e in std::fs::read_dir(from).expect("read examples").flatten() {
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_tree(env, &e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
            env.give(&dst);
        }
    }
}

#[test]
fn ibuild_image_saved_runs_in_podman_like_in_irun() {
    for user in users() {
        if !has_subids(user) {
            imago_it::inherent_skip(&format!(
                "{}: rootless podman needs a subuid range",
                user.name()
            ));
            continue;
        }
        if !crate::ibuild_support::have("podman") {
            imago_it::skip("podman not installed");
            continue;
        }
        let env = env_with_busybox(user);
        copy_tree(
            &env,
            &imago_it::repo_root().join("examples/cowsay"),
            &env.path("cowsay"),
        );
        ibuild(&env, "cowsay", &["-t", "ibcowsay"]).success();
        let ours = irun(&env, "ibcowsay", &["hello", "podman"]).success();
        assert!(ours.stdout().contains("< hello podman >"), "{ours}");
        let ep = env
            .cmd("irun")
            .args(["--rm", "--entrypoint", "echo", "ibcowsay", "replaced"])
            .ok();
        assert_eq!(
            ep.stdout().trim(),
            "replaced",
            "--entrypoint replaces ENTRYPOINT"
        );
        let saved = env.path("saved.tar");
        env.cmd("iimage")
            .args(["save", "-o"])
            .arg(&saved)
            .arg("ibcowsay")
            .ok();
        let podman = crate::ibuild_support::podman;
        podman(&env).args(["load", "-q", "-i"]).arg(&saved).ok();
        let mut run = podman(&env).args(["run", "--rm", "--network", "none"]);
        if user == User::Root {
            // Root here lacks CAP_SYS_RESOURCE: podman's default rlimits cannot be set.
            run = run.args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ]);
        }
        let theirs = run.args(["ibcowsay", "hello", "podman"]).run();
        let _ = podman(&env).args(["rmi", "-f", "ibcowsay"]).run();
        let theirs = theirs.success();
        assert_eq!(
            theirs.stdout(),
            ours.stdout(),
            "podman and irun print the same"
        );
    }
}

#[test]
fn e57_from_pulls_a_missing_base_from_its_registry() {
    use crate::registry_support::{Auth, Registry};
    if !crate::ibuild_support::have("docker-registry") {
        imago_it::skip("docker-registry not installed");
        return;
    }
    for user in users() {
        let env = env_with_busybox(user);
        let reg = Registry::start(&env.path("registry"), Auth::None, None);
        let repo = format!("{}/base/busybox:1", reg.addr);
        env.cmd("ipush").args(["-q", "busybox", &repo]).ok();
        // A second store without the base: FROM pulls it (a tag means that tag).
        let clean = env.mkdir("store2");
        context(
            &env,
            "pull",
            &[(
                "Dockerfile",
                &format!("FROM {repo}\nRUN echo pulled > /p\n"),
            )],
        );
        let mut c = env
            .cmd("ibuild")
            .args(["-t", "pulled"])
            .arg(env.path("pull"))
            .env("IMAGO_ROOT", &clean);
        c.command().current_dir(env.path("pull"));
        c.ok();
        let store = imago_store::Store::open(&clean).expect("store2");
        assert!(
            store.resolve(&repo).is_ok(),
            "the base was pulled into the store"
        );
        assert!(store.resolve("pulled").is_ok());
        // Missing and not pullable: a clear error naming the line.
        context(
            &env,
            "nopull",
            &[("Dockerfile", &format!("FROM {}/nothere:1\n", reg.addr))],
        );
        ibuild(&env, "nopull", &[]).fails_with("line 1");
    }
}

/// busybox httpd on a free loopback port, killed on drop.
struct Httpd(std::process::Child, u16);

impl Drop for Httpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn httpd(dir: &std::path::Path) -> Httpd {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = std::process::Command::new("busybox")
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(dir)
            .spawn()
            .expect("spawn busybox httpd");
        let mut h = Httpd(child, port);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return h;
            }
            if h.0.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = h.0.kill();
    }
    panic!("busybox httpd did not start");
}

#[test]
fn h94_h96_add_url_with_checksum() {
    for user in users() {
        let env = env_with_busybox(user);
        let www = env.mkdir("www");
        std::fs::write(www.join("file.txt"), "remote\n").expect("write");
        let srv = httpd(&www);
        let url = format!("http://127.0.0.1:{}/file.txt", srv.1);
        let hex = imago_oci::Digest::of(b"remote\n").hex().to_string();
        context(
            &env,
            "url",
            &[(
                "Dockerfile",
                &format!(
                    "FROM busybox\nADD {url} /dl/\nADD --checksum=sha256:{hex} {url} /named\nADD --chmod=755 {url} /x\n"
                ),
            )],
        );
        ibuild(&env, "url", &["-t", "url"]).success();
        let dl = find(&env, "url", "dl/file.txt").expect("dl/file.txt");
        assert_eq!((dl.data.as_slice(), dl.mode), (&b"remote\n"[..], 0o600));
        assert_eq!(find(&env, "url", "named").expect("named").data, b"remote\n");
        assert_eq!(find(&env, "url", "x").expect("x").mode, 0o755);
        for (sum, err) in [
            (format!("sha256:{}", "0".repeat(64)), "digest mismatch"),
            ("md5:0123".to_string(), "unsupported digest algorithm"),
            ("nocolon".to_string(), "invalid checksum digest format"),
        ] {
            context(
                &env,
                "bad",
                &[(
                    "Dockerfile",
                    &format!("FROM busybox\nADD --checksum={sum} {url} /x\n"),
                )],
            );
            ibuild(&env, "bad", &[]).fails_with(err);
        }
        context(
            &env,
            "local",
            &[
                (
                    "Dockerfile",
                    &format!("FROM busybox\nADD --checksum=sha256:{hex} f /x\n"),
                ),
                ("f", "f"),
            ],
        );
        ibuild(&env, "local", &[]).fails_with("checksum requires HTTP(S) or Git sources");
    }
}

#[test]
fn j108_run_mount_bind_from_a_stage() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "bfrom",
            &[(
                "Dockerfile",
                "FROM busybox AS src\nRUN mkdir /out && echo from-stage > /out/s && rm /bin/vi\n\
                 FROM busybox\nRUN --mount=type=bind,from=src,source=/out,target=/m cat /m/s > /got\n\
                 RUN --mount=type=bind,from=src,target=/r,rw touch /r/written && ls /r/bin/vi 2>/dev/null > /vi || true\n",
            )],
        );
        ibuild(&env, "bfrom", &["-t", "bfrom"]).success();
        assert_eq!(
            find(&env, "bfrom", "got").expect("got").data,
            b"from-stage\n"
        );
        assert_eq!(
            find(&env, "bfrom", "vi").expect("vi").data,
            b"",
            "the stage's whiteout applies"
        );
        assert!(find(&env, "bfrom", "r/written").is_none() && find(&env, "bfrom", "m").is_none());
    }
}

/// RUN gets the host's network by default; `RUN --network=none` and
/// `ibuild --network none` give a namespace whose only interface is `lo`.
#[test]
fn j107_run_network_none_has_only_loopback() {
    let interfaces = |data: &[u8]| -> Vec<String> {
        // /proc/net/dev: two header lines, then `name: counters…` per interface.
        String::from_utf8_lossy(data)
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next().map(|n| n.trim().to_string()))
            .collect()
    };
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "net",
            &[(
                "Dockerfile",
                "FROM busybox\nRUN cat /proc/net/dev > /host-net\n\
                 RUN --network=none cat /proc/net/dev > /none-net\n",
            )],
        );
        ibuild(&env, "net", &["-t", "net"]).success();
        let host = interfaces(&find(&env, "net", "host-net").expect("host-net").data);
        let none = interfaces(&find(&env, "net", "none-net").expect("none-net").data);
        assert_eq!(
            none,
            vec!["lo".to_string()],
            "[{}] RUN --network=none",
            user.name()
        );
        assert!(
            host.len() > 1,
            "[{}] default RUN sees the host's interfaces: {host:?}",
            user.name()
        );

        context(
            &env,
            "net2",
            &[("Dockerfile", "FROM busybox\nRUN cat /proc/net/dev > /n\n")],
        );
        ibuild(&env, "net2", &["--network", "none", "-t", "net2"]).success();
        let n = interfaces(&find(&env, "net2", "n").expect("n").data);
        assert_eq!(
            n,
            vec!["lo".to_string()],
            "[{}] ibuild --network none",
            user.name()
        );
    }
}

/// On a terminal (a real pty from `script`), ibuild draws a spinner per
/// step and leaves one line per finished step, `[2/3] RUN …  DONE 0.1s` / `CACHED`; a
/// failed RUN is marked `ERROR` and its last 20 output lines are printed with the error.
/// (Plain, non-tty output is what every other test here reads.)
#[test]
fn progress_tty_display_steps_done_cached_and_failure_tail() {
    if !std::path::Path::new("/usr/bin/script").exists() {
        imago_it::skip("progress tty test: /usr/bin/script (util-linux) is not installed");
        return;
    }
    // The pty's output without escape sequences (the display's cursor moves).
    fn strip(raw: &[u8]) -> String {
        let s = String::from_utf8_lossy(raw);
        let mut out = String::new();
        let mut it = s.chars().peekable();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                if it.next_if_eq(&'[').is_some() {
                    for c in it.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    it.next();
                }
            } else {
                out.push(c);
            }
        }
        out
    }
    let quote = |p: &std::path::Path| format!("'{}'", p.display());
    for user in users() {
        let env = env_with_busybox(user);
        let on_pty = |dir: &str, tag: &str| {
            let cmd = format!(
                "stty cols 100 rows 30; exec {} --root {} -t {tag} {}",
                quote(&imago_it::bin("ibuild")),
                quote(&env.root()),
                quote(&env.path(dir)),
            );
            let out = env
                .cmd_path("/usr/bin/script")
                .args(["-qec", &cmd, "/dev/null"])
                .run();
            let text = strip(&out.output.stdout);
            (out.code(), text)
        };
        context(
            &env,
            "prog",
            &[(
                "Dockerfile",
                "FROM busybox\nRUN echo progress-one\nRUN echo progress-two > /two\n",
            )],
        );
        let (code, text) = on_pty("prog", "prog");
        let who = user.name();
        assert_eq!(code, Some(0), "[{who}] ibuild on a pty: {text}");
        for step in [
            "[1/3] FROM busybox  DONE ",
            "[2/3] RUN echo progress-one  DONE ",
            "[3/3] RUN echo progress-two > /two  DONE ",
            "naming to prog:latest done",
        ] {
            assert!(text.contains(step), "[{who}] `{step}` in: {text}");
        }
        assert_eq!(
            find(&env, "prog", "two").expect("/two").data,
            b"progress-two\n",
            "[{who}] the image is built"
        );
        let (code, text) = on_pty("prog", "prog");
        assert_eq!(code, Some(0), "[{who}] rebuild on a pty: {text}");
        for step in [
            "[2/3] RUN echo progress-one  CACHED",
            "[3/3] RUN echo progress-two > /two  CACHED",
        ] {
            assert!(text.contains(step), "[{who}] `{step}` in: {text}");
        }

        context(
            &env,
            "progfail",
            &[(
                "Dockerfile",
                "FROM busybox\nRUN for i in $(seq 1 30); do echo fail-line$i; done; exit 3\n",
            )],
        );
        let (code, text) = on_pty("progfail", "progfail");
        assert_eq!(code, Some(1), "[{who}] a failed RUN exits 1: {text}");
        assert!(
            text.contains("exit 3  ERROR"),
            "[{who}] the step is marked: {text}"
        );
        let marker = "--- last 20 lines of output ---";
        let tail = text
            .split_once(marker)
            .map(|(_, t)| t)
            .unwrap_or_else(|| panic!("[{who}] `{marker}` in: {text}"));
        assert!(
            tail.contains("fail-line11\r\n") && tail.contains("fail-line30\r\n"),
            "[{who}] the last 20 lines: {tail}"
        );
        assert!(
            !tail.contains("fail-line10\r\n"),
            "[{who}] only the last 20 lines: {tail}"
        );
        assert!(
            tail.contains("error: step 2") && tail.contains("exit code: 3"),
            "[{who}] the error follows the tail: {tail}"
        );
    }
}
