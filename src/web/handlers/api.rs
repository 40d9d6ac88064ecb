//! The JSON API of the signed-in user.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::store::{self, SocialAccount};
use crate::web::auth::Authenticated;
use crate::web::response::{ApiError, NO_STORE};
use crate::web::AppState;

#[derive(Serialize)]
struct LinkedAccount<'a> {
    provider: &'a str,
    uid: &'a str,
    created_at: i64,
    last_login_at: Option<i64>,
}

impl<'a> From<&'a SocialAccount> for LinkedAccount<'a> {
    fn from(a: &'a SocialAccount) -> Self {
        LinkedAccount {
            provider: &a.provider,
            uid: &a.uid,
            created_at: a.created_at,
            last_login_at: a.last_login_at,
        }
    }
}

#[derive(Serialize)]
struct Me<'a> {
    id: i64,
    username: &'a str,
    email: Option<&'a str>,
    first_name: &'a str,
    last_name: &'a str,
    is_active: bool,
    created_at: i64,
    last_login_at: Option<i64>,
    accounts: Vec<LinkedAccount<'a>>,
}

/// GET /api/me: the current user and its linked accounts (from the user cache when the request
/// came with a bearer token, so the hot path needs no database round trip).
pub(crate) async fn me(
    auth: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = &auth.user;
    let user_id = user.id;
    let loaded;
    let accounts: &[SocialAccount] = match &auth.accounts {
        Some(snapshot) => &snapshot.accounts,
        None => {
            loaded = store::run(&state.pool, move |conn| {
                Ok(SocialAccount::for_user(conn, user_id)?)
            })
            .await?;
            &loaded
        }
    };
    let me = Me {
        id: user.id,
        username: &user.username,
        email: user.email.as_deref(),
        first_name: &user.first_name,
        last_name: &user.last_name,
        is_active: user.is_active,
        created_at: user.created_at,
        last_login_at: user.last_login_at,
        accounts: accounts.iter().map(LinkedAccount::from).collect(),
    };
    Ok(HttpResponse::Ok().insert_header(NO_STORE).json(me))
}
