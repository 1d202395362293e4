//! One integration binary: a module per program. Every test runs the real binaries,
//! as root and as the unprivileged test users (see the harness).

mod harness_self;
