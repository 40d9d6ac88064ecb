use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::auth::Authenticated;
use crate::db;
use crate::errors::ApiError;
use crate::models::social_account::SocialAccount;
use crate::startup::AppState;

#[derive(Serialize)]
struct LinkedAccount {
    provider: String,
    uid: String,
    created_at: i64,
    last_login_at: Option<i64>,
}

#[derive(Serialize)]
struct Me {
    id: i64,
    username: String,
    email: Option<String>,
    first_name: String,
    last_name: String,
    is_active: bool,
    created_at: i64,
    last_login_at: Option<i64>,
    accounts: Vec<LinkedAccount>,
}

/// GET /api/me: the current user and its linked accounts.
pub async fn me(auth: Authenticated, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let user = auth.user;
    let user_id = user.id;
    let accounts = match auth.accounts {
        Some(snapshot) => snapshot.accounts.clone(),
        None => {
            db::run(&state.pool, move |conn| {
                Ok(SocialAccount::for_user(conn, user_id)?)
            })
            .await?
        }
    };
    let me = Me {
        id: user.id,
        username: user.username,
        email: user.email,
        first_name: user.first_name,
        last_name: user.last_name,
        is_active: user.is_active,
        created_at: user.created_at,
        last_login_at: user.last_login_at,
        accounts: accounts
            .into_iter()
            .map(|a| LinkedAccount {
                provider: a.provider,
                uid: a.uid,
                created_at: a.created_at,
                last_login_at: a.last_login_at,
            })
            .collect(),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(me))
}
