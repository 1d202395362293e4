//! USER and `--chown` names resolved against the `/etc/passwd` and `/etc/group` of the
//! state a step writes into (docs/semantics.md item 78), read through its layer view.

use super::error::StepError;
use crate::fsview::LowerView;
use crate::perms;

/// The text of a file in the view (symlinks followed), empty when missing.
fn read(view: &LowerView, path: &str) -> String {
    let c = view.resolve(path, true);
    view.lookup(&c)
        .and_then(|e| std::fs::read_to_string(e.host).ok())
        .unwrap_or_default()
}

/// uid/gid of a USER string (`0:0` for an empty one).
pub(super) fn user_ids(view: &LowerView, user: &str) -> Result<(u32, u32), StepError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let ids = perms::resolve_user(user, &read(view, "/etc/passwd"), &read(view, "/etc/group"))?;
    Ok((ids.uid, ids.gid))
}

/// uid/gid of a `--chown` value.
pub(super) fn chown_ids(view: &LowerView, chown: &str) -> Result<(u32, u32), StepError> {
    Ok(perms::resolve_chown(
        chown,
        &read(view, "/etc/passwd"),
        &read(view, "/etc/group"),
    )?)
}
