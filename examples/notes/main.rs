//! The notes example: keygate with a small application inside it.
//!
//!     ./scripts/dev.sh --example notes      # Keycloak, the demo realm, SQLite, then this
//!
//! or, with Keycloak already running, `cargo run --example notes` and the `KEYGATE_*` settings
//! of `scripts/keycloak.sh env`. `cargo run --example notes -- migrate` migrates and exits.

mod notes;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    keygate::main(notes::install).await
}
