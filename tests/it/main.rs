//! One integration binary: a module per program. Every test runs the real binaries,
//! as root and as the unprivileged test users (see the harness).

mod harness_self;
mod registry;
mod registry_support;
mod irun;
mod irun_support;
mod ibuild;
mod ibuild_support;
mod iimage;
mod itag;
mod store_support;
