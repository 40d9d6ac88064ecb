//! Test harness: the real keygate on a free port, a fresh SQLite file (or PostgreSQL database) per
//! test, and the real Keycloak started by `./scripts/keycloak.sh start`. One file per job; all of
//! it is re-exported here, so a test file needs only `use crate::helpers::*;`.

mod app;
mod browser;
mod db;
mod env;
mod nginx;
mod process;
mod proxy;
mod realm;
mod tokens;
mod upstream;

pub use app::*;
pub use browser::*;
pub use db::*;
pub use env::*;
pub use nginx::*;
pub use process::*;
pub use proxy::*;
pub use realm::*;
pub use tokens::*;
pub use upstream::*;
