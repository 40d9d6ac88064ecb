//! The composition root: [`Keygate`] assembles keygate and the application inside it,
//! [`Server`] is the started result, and [`main`] is the command line of a binary built on them
//! (keygate's own `main.rs` is the smallest one). `main` and the integration tests start exactly
//! the same server; tests bind port 0.

mod builder;
mod cli;
mod server;

pub use builder::Keygate;
pub use cli::main;
pub use server::Server;
