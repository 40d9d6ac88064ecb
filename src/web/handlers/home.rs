use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::Authenticated;
use crate::models::user::User;
use crate::startup::AppState;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    user: Option<std::sync::Arc<User>>,
    is_admin: bool,
    notice: Option<&'static str>,
}

#[derive(serde::Deserialize)]
pub struct HomeQuery {
    signed_out: Option<String>,
}

/// Who is signed in, or a link to sign in. Never redirects: the home page is where logout ends.
pub async fn home(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HomeQuery>,
) -> HttpResponse {
    let auth = Authenticated::extract(&req).await.ok();
    let is_admin = auth
        .as_ref()
        .is_some_and(|a| a.has_role(&state.settings.admin_role, &state.settings.client_id));
    let page = HomePage {
        user: auth.map(|a| a.user),
        is_admin,
        notice: query
            .signed_out
            .as_ref()
            .map(|_| "You have been signed out."),
    };
    crate::errors::page(StatusCode::OK, &page)
}
