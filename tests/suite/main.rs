//! Workspace-level integration and end-to-end tests.
//!
//! - `conformance`: one suite per port, run against the embedded adapters and
//!   the AWS adapters (on the ministack emulator that `infra/test.sh` starts);
//!   the same test names under `embedded` and `aws`.
//! - `local_stack`: the local stack over HTTP, including a SIGKILL and restart.
//! - `deployment`: template.yaml, the Lambda binaries, `events/` and
//!   `infra/openapi.yaml` agree; every sample event runs through its handler.
//! - `auth`: registration, login, tokens, sessions and CSRF over HTTP.
//! - `sessions`: refresh grace across tabs, Origin on the refresh cookie,
//!   login throttling under parallel guesses, removed co-admins, sendingMps.
//! - `fixtures`: AWS's own event fixtures through our plumbing.
//! - `fuzz`: a bounded schemathesis run of `infra/openapi.yaml` against the local stack.
//! - `frontend`: every route the frontend calls is routed; 405 for a method no route takes.

mod auth;
mod church;
mod conformance;
mod control;
mod counting;
mod deployed;
mod deployment;
mod directory;
mod faults;
mod fixtures;
mod frontend;
mod fuzz;
mod import;
mod inbound;
mod inbox_media;
mod local_stack;
mod logs;
mod messages;
mod numbers;
mod ops;
mod pacing;
mod pipeline;
mod recurring;
mod secrets;
mod sessions;
mod support;
mod telnyx;
mod template_limits;
mod templates;
