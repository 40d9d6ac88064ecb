//! The keygate binary: keygate with no application inside it, built on the same public API as
//! any application that embeds keygate (see `examples/notes`).

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    keygate::main(|keygate| keygate).await
}
