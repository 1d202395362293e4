//! docker's output shapes: `--format` templates, `json` and `table TEMPLATE` on
//! `iimage ls` and `ictr ps`, `iimage inspect` in docker's shape (and `--raw`),
//! `--format` on both inspects, and a bad template failing clearly with 125; as root,
//! imago-sub and imago-nosub.

#![allow(clippy::unwrap_used)] // test code: a failed step is a test failure

use imago_it::{users, Env};

use crate::ictr_support::Ctr;

/// The column where `word` starts on each line that has it.
fn column_of(text: &str, word: &str) -> Vec<Option<usize>> {
    text.lines().map(|l| l.find(word)).collect()
}

#[test]
fn iimage_ls_and_inspect_formats() {
    for u in users() {
        let who = u.name();
        let env = Env::new(u);
        let tar = env.busybox_tar();
        let id = env
            .cmd("iimage")
            .args(["import", "-c", "ENV A=1", "-c", "ENV B=two"])
            .arg(&tar)
            .arg("app:1")
            .ok()
            .stdout()
            .trim()
            .to_owned();
        env.cmd("itag").args(["app:1", "other"]).ok();

        let ls = env
            .cmd("iimage")
            .args(["ls", "--format", "{{.Repository}}:{{.Tag}}"])
            .ok();
        let text = ls.stdout();
        let mut names: Vec<&str> = text.lines().collect();
        names.sort();
        assert_eq!(names, ["app:1", "other:latest"], "[{who}] {ls}");

        // `table`: docker's titles, the columns aligned.
        let t = env
            .cmd("iimage")
            .args([
                "ls",
                "--format",
                "table {{.ID}}\\t{{.Repository}}\\t{{.Tag}}",
            ])
            .ok()
            .stdout();
        assert!(
            t.starts_with("IMAGE ID       REPOSITORY   TAG\n"),
            "[{who}] {t}"
        );
        let cols = column_of(&t, &id[7..19]);
        assert_eq!(cols, [None, Some(0), Some(0)], "[{who}] {t}");
        let tag_col = t.lines().next().unwrap().find("TAG");
        assert!(t.lines().skip(1).all(|l| l.len() > tag_col.unwrap()), "{t}");

        // `json`: one docker-keyed object per line.
        let j = env
            .cmd("iimage")
            .args(["ls", "--format", "json"])
            .ok()
            .stdout();
        let rows: Vec<serde_json::Value> = j
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2, "[{who}] {j}");
        assert!(rows.iter().all(|r| r["ID"] == id[7..19]), "[{who}] {j}");
        assert!(
            rows.iter()
                .any(|r| r["Repository"] == "app" && r["Tag"] == "1"),
            "{j}"
        );

        // inspect: docker's shape.
        let v: serde_json::Value =
            serde_json::from_str(&env.cmd("iimage").args(["inspect", "app:1"]).ok().stdout())
                .unwrap();
        assert_eq!(v[0]["Id"], id.as_str(), "[{who}] {v}");
        assert_eq!(
            v[0]["Config"]["Env"],
            serde_json::json!(["A=1", "B=two"]),
            "{v}"
        );
        assert_eq!(
            v[0]["RepoTags"],
            serde_json::json!(["app:1", "other:latest"]),
            "{v}"
        );
        assert_eq!(v[0]["RootFS"]["Type"], "layers", "{v}");
        assert_eq!(
            v[0]["RootFS"]["Layers"].as_array().map(Vec::len),
            Some(1),
            "{v}"
        );
        assert!(v[0]["Size"].as_u64().unwrap() > 0, "{v}");
        let f = env
            .cmd("iimage")
            .args([
                "inspect",
                "-f",
                "{{json .Config.Env}} {{.Os}}",
                "app:1",
                "other",
            ])
            .ok()
            .stdout();
        assert_eq!(
            f, "[\"A=1\",\"B=two\"] linux\n[\"A=1\",\"B=two\"] linux\n",
            "[{who}]"
        );
        // --raw: the stored OCI documents.
        let raw: serde_json::Value = serde_json::from_str(
            &env.cmd("iimage")
                .args(["inspect", "--raw", "app:1"])
                .ok()
                .stdout(),
        )
        .unwrap();
        assert_eq!(raw[0]["Config"]["config"]["Env"], v[0]["Config"]["Env"]);
        assert_eq!(
            raw[0]["Manifest"]["layers"].as_array().map(Vec::len),
            Some(1)
        );

        // Bad templates: one clear line, exit 125, nothing on stdout.
        let bad = env
            .cmd("iimage")
            .args(["ls", "--format", "{{.Foo}}"])
            .run()
            .code_is(125)
            .fails_with("template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo");
        assert_eq!(bad.stdout(), "", "[{who}] {bad}");
        env.cmd("iimage")
            .args(["inspect", "-f", "{{.Config.Env", "app:1"])
            .run()
            .code_is(125)
            .fails_with("template: :1: unclosed action");
    }
}

#[test]
fn ictr_ps_and_inspect_formats() {
    for u in users() {
        let who = u.name();
        let t = Ctr::new(u);
        let id = t.run_d(&["--name", "fmt1", "busybox", "true"]);
        let st = t.wait_status("fmt1", |s| s.starts_with("Exited"));
        assert!(st.starts_with("Exited (0)"), "[{who}] {st}");

        let ps = t
            .ictr(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
            .success()
            .stdout();
        assert!(
            ps.starts_with("fmt1 Exited (0) ") && ps.lines().count() == 1,
            "[{who}] {ps}"
        );

        let j = t.ictr(&["ps", "-a", "--format", "json"]).success().stdout();
        let rows: Vec<serde_json::Value> = j
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 1, "[{who}] {j}");
        assert_eq!(
            (rows[0]["Names"].as_str(), rows[0]["State"].as_str()),
            (Some("fmt1"), Some("exited"))
        );
        assert_eq!(rows[0]["ID"], id[..12], "{j}");
        let whole = t
            .ictr(&["ps", "-a", "--no-trunc", "--format", "{{json .}}"])
            .success()
            .stdout();
        let row: serde_json::Value = serde_json::from_str(whole.trim()).unwrap();
        assert_eq!(row["ID"], id.as_str(), "[{who}] {whole}");

        let table = t
            .ictr(&["ps", "-a", "--format", "table {{.Names}}\\t{{.State}}"])
            .success()
            .stdout();
        assert_eq!(table, "NAMES     STATE\nfmt1      exited\n", "[{who}]");

        let i = t
            .ictr(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.Name}} {{.State.ExitCode}}",
                "fmt1",
            ])
            .success()
            .stdout();
        assert_eq!(i, "exited /fmt1 0\n", "[{who}]");

        t.ictr(&["ps", "-a", "--format", "{{.Nope}}"])
            .code_is(125)
            .fails_with("can't evaluate field Nope");
        t.ictr(&["inspect", "-f", "{{nosuch .}}", "fmt1"])
            .code_is(125)
            .fails_with("function \"nosuch\" not defined");
    }
}

#[test]
fn iimage_ls_filters_digests_and_prune_all() {
    for u in users() {
        let who = u.name();
        let env = Env::new(u);
        let tar = env.busybox_tar();
        let import = |changes: &[&str], name: &str| {
            let mut c = env.cmd("iimage").arg("import");
            for ch in changes {
                c = c.args(["-c", ch]);
            }
            c.arg(&tar).arg(name).ok().stdout().trim().to_owned()
        };
        import(&["ENV Y=2"], "alpine:3");
        // before/since compare creation times: two builds with their own
        let build = |name: &str, team: &str, epoch: &str| {
            let df = format!("FROM alpine:3\nLABEL team={team}\n");
            let ctx = env.write(&format!("{team}/Dockerfile"), df);
            env.cmd("ibuild")
                .args(["-t", name, "--source-date-epoch", epoch])
                .arg(ctx.parent().unwrap())
                .ok();
        };
        build("busybox:old", "hpc", "1000000000");
        build("busybox:new", "web", "1100000000");
        // the same name on a second image leaves the first one dangling
        import(&["ENV Z=3"], "gone:1");
        import(&["ENV Z=4"], "gone:1");
        let names = |args: &[&str]| {
            let out = env
                .cmd("iimage")
                .args(["ls", "--format", "{{.Repository}}:{{.Tag}}"])
                .args(args)
                .ok()
                .stdout();
            let mut v: Vec<String> = out.lines().map(str::to_owned).collect();
            v.sort();
            v
        };
        let both = ["busybox:new", "busybox:old"];
        assert_eq!(names(&["--filter", "reference=busy*"]), both, "[{who}]");
        assert_eq!(names(&["busybox:o*"]), ["busybox:old"], "[{who}]");
        assert_eq!(names(&["-f", "label=team=hpc"]), ["busybox:old"], "[{who}]");
        assert_eq!(names(&["-f", "label=team"]), both, "[{who}]");
        assert_eq!(
            names(&["-f", "dangling=true"]),
            ["<none>:<none>"],
            "[{who}]"
        );
        let since = ["-f", "since=busybox:old", "-f", "reference=busybox"];
        assert_eq!(names(&since), ["busybox:new"], "[{who}]");
        assert_eq!(
            names(&["-f", "before=busybox:new"]),
            ["busybox:old"],
            "[{who}]"
        );
        assert_eq!(
            names(&["-a", "-f", "reference=alpine"]),
            ["alpine:3"],
            "[{who}]"
        );
        env.cmd("iimage")
            .args(["ls", "--filter", "colour=red"])
            .run()
            .code_is(125)
            .fails_with("invalid filter 'colour=red'");
        env.cmd("iimage")
            .args(["ls", "-f", "since=nope"])
            .run()
            .code_is(125)
            .fails_with("nope");

        // --digests: a DIGEST column with the manifest digest
        let t = env
            .cmd("iimage")
            .args(["ls", "--digests", "busybox:old"])
            .ok()
            .stdout();
        let header = t.lines().next().unwrap_or_default();
        let words: Vec<&str> = header.split_whitespace().take(4).collect();
        assert_eq!(
            words,
            ["REPOSITORY", "TAG", "DIGEST", "IMAGE"],
            "[{who}] {t}"
        );
        let row = t.lines().nth(1).unwrap_or_default();
        assert!(row.contains(" sha256:"), "[{who}] {t}");

        // prune -a keeps only the image a container was made from, stopped or not
        env.cmd("irun")
            .args(["--name", "keeper", "busybox:new", "true"])
            .ok();
        let p = env.cmd("iimage").args(["prune", "-a"]).ok().stdout();
        assert!(p.contains("Untagged: alpine:3"), "[{who}] {p}");
        assert!(p.contains("Deleted: sha256:"), "[{who}] {p}");
        assert_eq!(names(&[]), ["busybox:new"], "[{who}] {p}");
    }
}
