//! imago's build engine: Dockerfile stages, instruction semantics (BuildKit's), cache
//! keys, layer commits, multi-stage builds and progress events.
//!
//! Never: parses Dockerfile text itself (crates/dockerfile), draws progress (the bin
//! does, from [`events`]), or writes outside the store and its own temp dirs.
//!
//! # Public entry points
//!
//! - [`engine::plan`]`(&BuildOptions) -> Result<Planned, BuildError>`: the Dockerfile
//!   parsed and its stages planned, without a store (so a bad Dockerfile fails before
//!   one is created); then [`engine::build`]`(&Store, &Planned, &mut dyn Sink) ->
//!   Result<Built, BuildError>`: the whole build. [`engine::BuildOptions`]: context
//!   dir, Dockerfile text + name, `.dockerignore` ([`imago_dockerfile::DockerIgnore`]),
//!   target, build args, no_cache, labels, tags, network, SOURCE_DATE_EPOCH, secrets,
//!   quiet. [`engine::Built`]: image id (config digest), manifest digest, names. Tags
//!   change only when the whole build succeeded; each step's result is recorded in the
//!   store's build cache as it completes.
//!   Must be called while the process is single-threaded (RUN clones the container
//!   process; rootless file work forks into the id mapping). RUN output goes to stderr
//!   (stdout stays for data), or nowhere with `quiet`.
//!   Errors: [`engine::BuildError`] (`Step { n, line, text, source }` names the step and
//!   its Dockerfile line; [`engine::StepError`] says what failed, e.g. `Exit { code }`
//!   for a failed RUN, `Download` for an ADD URL) with `hint()`.
//! - [`config`]: [`ImageConfig`] — the image config JSON as BuildKit writes it (Docker
//!   extensions `Healthcheck`, `OnBuild`, `Shell`; history with `empty_layer`; unknown
//!   fields kept), `env_set` (replace in place), `ensure_path`, `clamp_times`
//!   (SOURCE_DATE_EPOCH).
//! - [`instr::meta`]: one function per metadata instruction: applies it to an
//!   `ImageConfig` and returns the history `created_by` text exactly as BuildKit writes it
//!   (`CMD ["sh" "-c" "x"]`, `EXPOSE map[80/tcp:{}]`, `RUN /bin/sh -c x # buildkit`,
//!   `COPY a /b # buildkit`, `HEALTHCHECK &{…}`).
//! - [`instr::copy`]: `plan` (COPY/ADD source resolution), `items_digest` (cache key
//!   content digest: content + mode + owner, never mtime), `apply` (write into a new
//!   layer dir over the parent state).
//! - [`archive`]: local tars (ADD sources, the stdin context) into directories through
//!   imago_oci's hardened unpacker: `extract`, `extract_context`.
//! - [`stage`]: the stage graph: `target_index`, `resolve_base`, `resolve_from`, `needed`.
//! - [`cache`]: `step_key`, [`cache::CacheEntry`].
//! - [`change`]: `apply` one `--change` instruction (`iimage import -c`, `ictr commit
//!   -c`) to a config's `config` object.
//! - [`commit_container`]: `commit` — a container's writable dir as a new image over the
//!   image it ran from (`ictr commit`).
//! - [`perms`]: `--chown` and `USER` resolution; `--chmod` errors (the parser is
//!   [`imago_dockerfile::Chmod`]).
//! - [`glob`]: Go `filepath.Match` + `**`.
//! - [`fsview`]: a read-only overlay-semantics view of unpacked layer dirs.
//! - [`events`]: progress events ([`events::Event`]) through a [`events::Sink`]; the bin draws them.
//! - [`context`]: the build context. [`context::BuildContext`] (`open_dir` a dir, no
//!   store needed, or `open_stdin` a tar on stdin into the store's temp dir;
//!   `dockerfile`, `ignore`: what `docker build` finds; errors
//!   [`context::InputError`]), and the context a `RUN --mount=type=bind` sees
//!   (`.dockerignore` applied, `source=` resolved inside it).
//! - [`temp`]: [`temp::TempPath`], the guard every temp file and tree of a build is held
//!   by (removed on success, error and unwinding; inside the id mapping when needed).

pub mod archive;
pub mod cache;
pub mod change;
pub mod commit_container;
pub mod config;
pub mod context;
pub mod engine;
pub mod events;
pub mod fsview;
pub mod glob;
pub mod instr;
mod mount_stubs;
pub mod perms;
pub mod stage;
pub mod temp;

pub use config::ImageConfig;
