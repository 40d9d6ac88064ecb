//! The home page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::store::User;
use crate::web::auth::Authenticated;
use crate::web::response::page;
use crate::web::{AppState, NavLink};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    user: Option<std::sync::Arc<User>>,
    is_admin: bool,
    notice: Option<&'static str>,
    links: std::sync::Arc<[NavLink]>,
}

#[derive(serde::Deserialize)]
pub(crate) struct HomeQuery {
    signed_out: Option<String>,
}

/// Who is signed in, or a link to sign in. Never redirects: the home page is where logout ends.
pub(crate) async fn home(
    auth: Option<Authenticated>,
    state: web::Data<AppState>,
    query: web::Query<HomeQuery>,
) -> HttpResponse {
    let is_admin = auth.as_ref().is_some_and(|a| state.is_admin(a));
    let home = HomePage {
        user: auth.map(|a| a.user),
        is_admin,
        links: state.nav_links.clone(),
        notice: query
            .signed_out
            .as_ref()
            .map(|_| "You have been signed out."),
    };
    page(StatusCode::OK, &home)
}
