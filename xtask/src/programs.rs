//! Every imago program's `clap::Command`, read from the program's own `args.rs` (included
//! here by path, so the binaries and this generator share one definition and cannot
//! drift apart).
//!
//! Never: parses a command line or runs a program; the included modules only declare.

// The programs' option structs are built by clap and read by their own main.rs; here
// only their `Command` is used, so their fields are never read.
#[allow(dead_code)]
#[path = "../../bins/ibuild/src/args.rs"]
mod ibuild_args;
#[allow(dead_code)]
#[path = "../../bins/ictr/src/args.rs"]
mod ictr_args;
#[allow(dead_code)]
#[path = "../../bins/iimage/src/args.rs"]
mod iimage_args;
#[allow(dead_code)]
#[path = "../../bins/ilogin/src/args.rs"]
mod ilogin_args;
#[allow(dead_code)]
#[path = "../../bins/ilogout/src/args.rs"]
mod ilogout_args;
#[allow(dead_code)]
#[path = "../../bins/ipull/src/args.rs"]
mod ipull_args;
#[allow(dead_code)]
#[path = "../../bins/ipush/src/args.rs"]
mod ipush_args;
#[allow(dead_code)]
#[path = "../../bins/irun/src/args.rs"]
mod irun_args;
#[allow(dead_code)]
#[path = "../../bins/itag/src/args.rs"]
mod itag_args;

use clap::CommandFactory;

/// One program: its command line and the `description` of its Cargo package.
pub struct Program {
    pub command: clap::Command,
    cargo_toml: &'static str,
}

/// The programs, in the README's order.
pub fn all() -> Vec<Program> {
    let p = |command: clap::Command, cargo_toml| Program {
        command,
        cargo_toml,
    };
    vec![
        p(
            ibuild_args::Opts::command(),
            include_str!("../../bins/ibuild/Cargo.toml"),
        ),
        p(
            irun_args::Opts::command(),
            include_str!("../../bins/irun/Cargo.toml"),
        ),
        p(
            ictr_args::Opts::command(),
            include_str!("../../bins/ictr/Cargo.toml"),
        ),
        p(
            ipull_args::Opts::command(),
            include_str!("../../bins/ipull/Cargo.toml"),
        ),
        p(
            ipush_args::Opts::command(),
            include_str!("../../bins/ipush/Cargo.toml"),
        ),
        p(
            ilogin_args::Opts::command(),
            include_str!("../../bins/ilogin/Cargo.toml"),
        ),
        p(
            ilogout_args::Opts::command(),
            include_str!("../../bins/ilogout/Cargo.toml"),
        ),
        p(
            itag_args::Opts::command(),
            include_str!("../../bins/itag/Cargo.toml"),
        ),
        p(
            iimage_args::Opts::command(),
            include_str!("../../bins/iimage/Cargo.toml"),
        ),
    ]
    .into_iter()
    .map(Program::with_own_description)
    .collect()
}

impl Program {
    /// A bare `#[command(about)]` means "the package description", which clap reads at
    /// compile time: compiled here it would be this crate's, so put the program's back.
    fn with_own_description(mut self) -> Self {
        let about = self.command.get_about().map(|a| a.to_string());
        if about.as_deref() == Some(env!("CARGO_PKG_DESCRIPTION")) {
            if let Some(d) = package_description(self.cargo_toml) {
                self.command = self.command.about(d);
            }
        }
        self
    }

    /// The program's name (`irun`).
    pub fn name(&self) -> &str {
        self.command.get_name()
    }
}

/// The `description = "…"` line of a Cargo manifest (ours are one line, no escapes).
fn package_description(cargo_toml: &str) -> Option<String> {
    cargo_toml.lines().find_map(|l| {
        let v = l.strip_prefix("description = \"")?;
        v.strip_suffix('"').map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibuild_keeps_its_package_description() {
        let all = all();
        let ibuild = all
            .iter()
            .find(|p| p.name() == "ibuild")
            .map(|p| &p.command);
        let about = ibuild.and_then(|c| c.get_about()).map(|a| a.to_string());
        assert_eq!(
            about.as_deref(),
            package_description(include_str!("../../bins/ibuild/Cargo.toml")).as_deref()
        );
        assert_ne!(about.as_deref(), Some(env!("CARGO_PKG_DESCRIPTION")));
    }

    #[test]
    fn every_definition_is_valid() {
        let names: Vec<String> = all().iter().map(|p| p.name().to_owned()).collect();
        assert_eq!(
            names,
            ["ibuild", "irun", "ictr", "ipull", "ipush", "ilogin", "ilogout", "itag", "iimage"]
        );
        for p in all() {
            p.command.debug_assert();
        }
    }
}
