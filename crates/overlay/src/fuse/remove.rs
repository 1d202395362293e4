//! Removing and moving names: unlink, rmdir, rename.
//! Owns: whiteouts (a name that still exists in a lower gets one, put in place by a
//! rename so the lower file never shows through), emptying an upper dir of its whiteouts
//! before it goes, the `EXDEV` rule for directories with lower parts, marking a moved
//! directory opaque where lower layers could show through it.
//! Never: removes anything from a lower.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, OFlags, RenameFlags};
use rustix::io::Errno;

use super::inode::{Stack, UPPER};
use super::lookup::Found;
use super::sys::{self, Res};
use super::FuseOverlay;

/// An `O_PATH` fd of an entry about to lose its name: getattr keeps working on it while
/// the kernel holds the inode (an open file). `None` when it cannot be opened.
fn orphan(dir: BorrowedFd<'_>, name: &CStr) -> Option<OwnedFd> {
    sys::open_at(dir, name, OFlags::PATH, 0).ok()
}

impl FuseOverlay {
    fn layer_dir<'s>(&self, stack: &'s Stack, layer: u16) -> Res<BorrowedFd<'s>> {
        stack.at(layer).ok_or(Errno::STALE)
    }

    /// Remember that `found` (at `name` in directory `parent` with `stack`) lost its name.
    fn forget_name(
        &self,
        parent: u64,
        stack: &Stack,
        name: &CStr,
        found: &Found,
        keep: bool,
    ) -> Res<()> {
        let key = found.key_in(parent, name);
        let Some(ino) = self.inodes.live(key) else {
            return Ok(());
        };
        let fd = if keep {
            orphan(self.layer_dir(stack, found.layer)?, name)
        } else {
            None
        };
        let last = (found.layer == UPPER && found.st.st_nlink <= 1).then_some(key);
        self.inodes.unlinked(ino, last, fd);
        Ok(())
    }

    /// Replace the upper entry `name` of `upper` (not a directory) with a whiteout.
    fn whiteout_over(&self, upper: BorrowedFd<'_>, name: &CStr) -> Res<()> {
        if !self.forms.whiteout_chardev {
            sys::make_whiteout(upper, name, false)?;
            return rustix::fs::unlinkat(upper, name, AtFlags::empty());
        }
        let tmp = self.tmp_name();
        let work = self.work.as_fd();
        sys::make_whiteout(work, &tmp, true)?;
        rustix::fs::renameat(work, &tmp, upper, name).inspect_err(|_| {
            // Best effort: the leftover is cleared on the next start.
            let _ = rustix::fs::unlinkat(work, &tmp, AtFlags::empty());
        })
    }

    pub(crate) fn unlink_in(&self, parent: u64, name: &CString) -> Res<()> {
        if sys::reserved(name.to_bytes()) {
            return Err(Errno::NOENT);
        }
        let _ns = self.lock_ns();
        let stack = self.stack_of(parent)?;
        let found = self.scan(&stack, name)?.ok_or(Errno::NOENT)?;
        if found.is_dir() {
            return Err(Errno::ISDIR);
        }
        let need_wh = self.in_lowers(&stack, name)?;
        self.forget_name(parent, &stack, name, &found, true)?;
        if found.layer == UPPER {
            let upper = stack.upper().ok_or(Errno::STALE)?;
            if need_wh {
                return self.whiteout_over(upper, name);
            }
            return rustix::fs::unlinkat(upper, name, AtFlags::empty());
        }
        self.copy_up(parent, true)?;
        let stack = self.stack_of(parent)?;
        let upper = stack.upper().ok_or(Errno::STALE)?;
        sys::make_whiteout(upper, name, self.forms.whiteout_chardev)
    }

    pub(crate) fn rmdir_in(&self, parent: u64, name: &CString) -> Res<()> {
        if sys::reserved(name.to_bytes()) {
            return Err(Errno::NOENT);
        }
        let _ns = self.lock_ns();
        let stack = self.stack_of(parent)?;
        let found = self.scan(&stack, name)?.ok_or(Errno::NOENT)?;
        let Some(dirs) = &found.dirs else {
            return Err(Errno::NOTDIR);
        };
        if !self.is_empty(dirs)? {
            return Err(Errno::NOTEMPTY);
        }
        let need_wh = self.in_lowers(&stack, name)?;
        self.forget_name(parent, &stack, name, &found, false)?;
        if found.layer != UPPER {
            self.copy_up(parent, true)?;
            let stack = self.stack_of(parent)?;
            let upper = stack.upper().ok_or(Errno::STALE)?;
            return sys::make_whiteout(upper, name, self.forms.whiteout_chardev);
        }
        let upper = stack.upper().ok_or(Errno::STALE)?;
        let work = self.work.as_fd();
        let tmp = self.tmp_name();
        if need_wh && self.forms.whiteout_chardev {
            // One step: the whiteout takes the dir's place, the dir goes to the work dir.
            sys::make_whiteout(work, &tmp, true)?;
            rustix::fs::renameat_with(work, &tmp, upper, name, RenameFlags::EXCHANGE)?;
        } else {
            rustix::fs::renameat(upper, name, work, &tmp)?;
            if need_wh {
                sys::make_whiteout(upper, name, false)?;
            }
        }
        // What is left of it (whiteouts, markers) is the work dir's, cleared on start too.
        sys::remove_all(work, &tmp)
    }

    pub(crate) fn rename_in(
        &self,
        parent: u64,
        name: &CString,
        newparent: u64,
        newname: &CString,
        flags: u32,
    ) -> Res<()> {
        let flags = RenameFlags::from_bits(flags).ok_or(Errno::INVAL)?;
        if flags.intersects(RenameFlags::EXCHANGE | RenameFlags::WHITEOUT) {
            return Err(Errno::INVAL);
        }
        if sys::reserved(name.to_bytes()) {
            return Err(Errno::NOENT);
        }
        if sys::reserved(newname.to_bytes()) {
            return Err(Errno::INVAL);
        }
        let _ns = self.lock_ns();
        let sstack = self.stack_of(parent)?;
        let src = self.scan(&sstack, name)?.ok_or(Errno::NOENT)?;
        let dstack = self.stack_of(newparent)?;
        let dst = self.scan(&dstack, newname)?;
        if let Some(d) = &dst {
            if flags.contains(RenameFlags::NOREPLACE) {
                return Err(Errno::EXIST);
            }
            if d.key() == src.key() {
                // Two names of one file: rename does nothing.
                return Ok(());
            }
            match (src.is_dir(), &d.dirs) {
                (true, None) => return Err(Errno::NOTDIR),
                (false, Some(_)) => return Err(Errno::ISDIR),
                (true, Some(dd)) => {
                    if !self.is_empty(dd)? {
                        return Err(Errno::NOTEMPTY);
                    }
                }
                (false, None) => {}
            }
        }
        if src.is_dir() && (src.layer != UPPER || src.merged()) {
            // No redirect_dir: a directory with lower parts cannot move (mv copies).
            return Err(Errno::XDEV);
        }
        let src_is_dir = src.is_dir();
        let (sino, _) = self.remember(parent, name, src);
        let r = self.move_entry(
            sino,
            parent,
            name,
            newparent,
            newname,
            src_is_dir,
            dst.as_ref(),
        );
        // The reference taken just above was ours, not the kernel's.
        self.inodes.forget(sino, 1);
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn move_entry(
        &self,
        sino: u64,
        parent: u64,
        name: &CString,
        newparent: u64,
        newname: &CString,
        is_dir: bool,
        dst: Option<&Found>,
    ) -> Res<()> {
        self.copy_up(sino, true)?;
        self.copy_up(newparent, true)?;
        let sstack = self.stack_of(parent)?;
        let dstack = self.stack_of(newparent)?;
        let su = sstack.upper().ok_or(Errno::STALE)?;
        let du = dstack.upper().ok_or(Errno::STALE)?;
        let need_wh = self.in_lowers(&sstack, name)?;
        let at_dst = sys::stat_at(du, newname)?;
        let dst_whiteout = at_dst.as_ref().is_some_and(sys::is_whiteout);
        let dst_wh_file = !self.forms.whiteout_chardev
            && dstack.has_lowers()
            && sys::exists(du, &sys::wh_name(newname)?)?;
        if let Some(d) = dst {
            self.forget_name(newparent, &dstack, newname, d, !d.is_dir())?;
        }
        if is_dir {
            if dstack.has_lowers() {
                sys::set_opaque(su, name, self.forms.opaque_xattr)?;
            }
            if at_dst.as_ref().map(sys::file_type) == Some(FileType::Directory) {
                // A merged-empty dir: only whiteouts and markers are left in it.
                let d = sys::open_dir(du, newname)?;
                for n in sys::list(d.as_fd())? {
                    sys::remove_all(d.as_fd(), &n)?;
                }
            }
        }
        if is_dir && dst_whiteout {
            // A directory cannot replace a device: swap them, the whiteout lands here.
            rustix::fs::renameat_with(su, name, du, newname, RenameFlags::EXCHANGE)?;
            if !need_wh {
                rustix::fs::unlinkat(su, name, AtFlags::empty())?;
            }
        } else if need_wh && self.forms.whiteout_chardev {
            match rustix::fs::renameat_with(su, name, du, newname, RenameFlags::WHITEOUT) {
                Ok(()) => {}
                Err(Errno::INVAL) | Err(Errno::PERM) | Err(Errno::NOTSUP) => {
                    rustix::fs::renameat(su, name, du, newname)?;
                    sys::make_whiteout(su, name, true)?;
                }
                Err(e) => return Err(e),
            }
        } else {
            rustix::fs::renameat(su, name, du, newname)?;
            if need_wh {
                sys::make_whiteout(su, name, false)?;
            }
        }
        if dst_wh_file {
            sys::drop_wh_file(du, newname)?;
        }
        self.inodes.moved(sino, newparent, newname);
        Ok(())
    }
}
