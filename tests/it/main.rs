//! One integration binary: a module per program. Every test runs the real binaries,
//! as root and as the unprivileged test users (see the harness).

mod cli;
mod credentials;
mod devices;
mod formats;
mod harness_self;
mod hostile_image;
mod hostile_support;
mod hpc_mode;
mod ibuild;
mod ibuild_ecosystem;
mod ibuild_regress;
mod ibuild_support;
mod ictr;
mod ictr_exec;
mod ictr_support;
mod iimage;
mod irun;
mod irun_support;
mod itag;
mod local_dir;
mod ports;
mod pull_once;
mod registries_conf;
mod registry;
mod registry_regress;
mod registry_resume;
mod registry_support;
mod seed;
mod shared_store;
mod single_map;
mod squash;
mod storage_driver;
mod store_regress;
mod store_support;
