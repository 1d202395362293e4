//! Checks of the harness itself: the users it promises exist and can run things.

use imago_it::{users, Env, User};

#[test]
fn each_user_runs_as_itself() {
    for u in users() {
        let env = Env::new(u);
        let out = env.cmd_path("id").arg("-un").ok();
        if imago_it::running_as_root() {
            assert_eq!(out.stdout().trim(), u.name());
        }
        if u == User::Sub {
            let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
            assert!(
                subuid.lines().any(|l| l.starts_with("imago-sub:")),
                "imago-sub has no subuid range"
            );
        }
        if u == User::NoSub {
            let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
            assert!(
                !subuid.lines().any(|l| l.starts_with("imago-nosub:")),
                "imago-nosub must have no subuid range"
            );
        }
    }
}
