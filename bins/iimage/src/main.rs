//! `iimage`: the image inventory of the imago store — ls, inspect, rm, prune, import,
//! export, save, load, fsck, gc, info. Data on stdout, diagnostics on stderr; exit 0 on
//! success, 125 on failure (imago_cli::ExitCodes). docs/iimage.md has the usage.
//!
//! Store work that creates or removes files owned by other ids (unpacking layers for
//! import/export, removing unpacked layers in gc/prune/rm) runs inside the user's id
//! mapping (imago_sandbox::run_in_mapping); the rest runs directly.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod common;
mod filter;
mod images;
mod inspect;
mod maint;
mod squash;
mod transfer;

use std::process::ExitCode;

use args::{Cmd, Opts};

fn main() -> ExitCode {
    let opts = match imago_cli::args::parse::<Opts>() {
        Ok(o) => o,
        Err(code) => return code,
    };
    imago_cli::logging::init(&opts.global.log_level);
    let g = &opts.global;
    let r = match opts.cmd {
        Cmd::Ls {
            quiet,
            no_trunc,
            format,
            filters,
            digests,
            all: _,
            reference,
        } => images::ls(
            g,
            &images::LsOpts {
                quiet,
                no_trunc,
                format,
                filters,
                digests,
                reference,
            },
        ),
        Cmd::Inspect {
            format,
            raw,
            images,
        } => inspect::inspect(g, &images, format.as_deref(), raw),
        Cmd::Rm { force, images } => images::rm(g, &images, force),
        Cmd::Prune { force: _, all } => images::prune(g, all),
        Cmd::Import {
            changes,
            message,
            max_size,
            source,
            name,
        } => transfer::import(
            g,
            &source,
            name.as_deref(),
            &changes,
            message.as_deref(),
            max_size,
        ),
        Cmd::Export { output, image } => transfer::export(g, &image, output.as_deref()),
        Cmd::Squash { output, image } => squash::squash(g, &image, &output),
        Cmd::Save {
            output,
            format,
            images,
        } => transfer::save(g, &images, output.as_deref(), &format),
        Cmd::Load { input, quiet } => transfer::load(g, input.as_deref(), quiet),
        Cmd::Fsck {
            format,
            repair: false,
            ..
        } => maint::fsck(g, format),
        Cmd::Fsck { format, wait, .. } => {
            maint::repair(g, format, std::time::Duration::from_secs(wait))
        }
        Cmd::Gc {
            layers,
            dry_run,
            build_cache,
            force,
            wait,
        } => maint::gc(
            g,
            maint::GcFlags {
                layers,
                dry_run,
                build_cache,
                force,
                wait: std::time::Duration::from_secs(wait),
            },
        ),
        Cmd::Info { format } => maint::info(g, format),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => imago_cli::fail(&*e),
    }
}
