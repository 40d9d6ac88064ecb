//! The smallest application inside keygate: a page for signed-in users, one for a role.
use actix_web::{web, HttpResponse};
use askama::Template;
use keygate::{CurrentUser, Keygate, Page, RequireRole, Role};

#[derive(Template)]
#[template(source = "<h1>Hello, {{ name }}</h1>", ext = "html")]
struct Hello {
    name: String,
}

async fn hello(user: CurrentUser, page: Page) -> HttpResponse {
    let name = user.user().username.clone();
    page.render("Hello", &Hello { name })
}

fn install(keygate: Keygate) -> Keygate {
    let reporters = || RequireRole::new(Role::realm("reporter"));
    keygate
        .nav_link("Hello", "/hello")
        .mount("/hello", |scope| scope.route("", web::get().to(hello)))
        .mount("/reports", move |s| {
            s.wrap(reporters()).route("", web::get().to(hello))
        })
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    keygate::main(install).await
}
