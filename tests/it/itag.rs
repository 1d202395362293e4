//! itag through the real binary: names by name/id/prefix/digest, concurrency.

use crate::store_support::{fsck_clean, import_busybox, ls_names};
use imago_it::{users, Env};

#[test]
fn itag_names_by_name_id_prefix_and_digest() {
    for user in users() {
        let env = Env::new(user);
        let id = import_busybox(&env, "busybox");
        let hex = id.trim_start_matches("sha256:");
        env.cmd("itag").args(["busybox", "one"]).ok();
        env.cmd("itag").args([id.as_str(), "two:2"]).ok();
        env.cmd("itag")
            .args([&hex[..8], "localhost:5000/three:3"])
            .ok();
        let inspect = env.cmd("iimage").args(["inspect", "busybox"]).ok();
        let v: serde_json::Value = serde_json::from_str(&inspect.stdout()).expect("json");
        let digest = v[0]["Digest"].as_str().expect("Digest").to_owned();
        env.cmd("itag").args([digest.as_str(), "four"]).ok();
        let names = ls_names(&env);
        assert_eq!(names.len(), 1, "{names:?}");
        let mut got = names[&id].clone();
        got.sort();
        assert_eq!(
            got,
            ["busybox", "four", "localhost:5000/three:3", "one", "two:2"]
        );
        // Errors name the input.
        env.cmd("itag")
            .args(["nosuch", "x"])
            .run()
            .fails_with("image `nosuch` not found");
        env.cmd("itag")
            .args(["busybox", "Bad:Name"])
            .run()
            .fails_with("invalid image name `Bad:Name`");
    }
}

#[test]
fn eight_concurrent_itags_all_land() {
    for user in users() {
        let env = Env::new(user);
        import_busybox(&env, "busybox");
        let mut children = vec![];
        for i in 0..8 {
            let mut c = env
                .cmd("itag")
                .args(["busybox".to_owned(), format!("conc{i}:t{i}")]);
            children.push((
                i,
                c.command()
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn itag"),
            ));
        }
        for (i, ch) in children {
            let out = ch.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "itag #{i} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let names = ls_names(&env);
        let all: Vec<&String> = names.values().flatten().collect();
        for i in 0..8 {
            let n = format!("conc{i}:t{i}");
            assert!(all.contains(&&n), "[{}] {n} missing: {all:?}", user.name());
        }
        assert_eq!(all.len(), 9, "{all:?}");
        fsck_clean(&env);
    }
}
