//! The user list, the user detail page and the actions on a user.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{db_failed, fmt_opt, fmt_time, html, not_found, EventView};
use crate::domain::admin_actions::{self, Action, AdminAction};
use crate::domain::audit::AuditContext;
use crate::session::TypedSession;
use crate::store::social_accounts::{self, KEYCLOAK};
use crate::store::users::{UserQuery, UserSort};
use crate::store::{self, audit_events, sessions, SocialAccount, User};
use crate::web::admin_gate::Admin;
use crate::web::csrf::CsrfForm;
use crate::web::response::{error_page, path_with_query, see_other, with_csrf, Pager, PAGE_SIZE};
use crate::web::AppState;

#[derive(Deserialize)]
pub(crate) struct UsersQuery {
    q: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<i64>,
}

pub(crate) struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub name: String,
    pub accounts: i64,
    pub active: bool,
    pub created: String,
    pub last_login: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    rows: Vec<UserRow>,
    total: i64,
    q: String,
    sort: &'static str,
    dir: &'static str,
    pager: Pager,
}

fn users_href(q: &str, sort: &str, dir: &str, page: i64) -> String {
    let page = page.to_string();
    path_with_query(
        "/admin/users",
        &[("q", q), ("sort", sort), ("dir", dir), ("page", &page)],
    )
}

pub(crate) async fn users(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<UsersQuery>,
) -> HttpResponse {
    let q: String = query
        .q
        .clone()
        .unwrap_or_default()
        .chars()
        .take(100)
        .collect();
    let (sort, sort_name) = match query.sort.as_deref() {
        Some("last_login") => (UserSort::LastLogin, "last_login"),
        _ => (UserSort::Created, "created"),
    };
    let (descending, dir) = match query.dir.as_deref() {
        Some("asc") => (false, "asc"),
        _ => (true, "desc"),
    };
    let page = Pager::requested(query.page);
    let search = q.clone();
    let result = store::run(&state.pool, move |conn| {
        let (users, total) = User::page(
            conn,
            &UserQuery {
                search: Some(&search),
                sort,
                descending,
                offset: Pager::offset(page),
                limit: PAGE_SIZE,
            },
        )?;
        let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
        let counts = social_accounts::counts_for(conn, &ids)?;
        Ok((users, counts, total))
    })
    .await;
    let (users, counts, total) = match result {
        Ok(r) => r,
        Err(e) => return db_failed(e),
    };
    let rows = users
        .into_iter()
        .map(|u| UserRow {
            accounts: counts
                .iter()
                .find(|(id, _)| *id == u.id)
                .map_or(0, |(_, n)| *n),
            id: u.id,
            name: format!("{} {}", u.first_name, u.last_name)
                .trim()
                .to_string(),
            email: u.email.unwrap_or_default(),
            active: u.is_active,
            created: fmt_time(u.created_at),
            last_login: fmt_opt(u.last_login_at),
            username: u.username,
        })
        .collect();
    let pager = Pager::new(page, total, |p| users_href(&q, sort_name, dir, p));
    html(&UsersPage {
        rows,
        total,
        q,
        sort: sort_name,
        dir,
        pager,
    })
}

pub(crate) struct AccountView {
    pub id: i64,
    pub provider: String,
    pub uid: String,
    pub created: String,
    pub last_login: String,
    /// The stored claims, pretty-printed.
    pub claims: String,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    user: User,
    created: String,
    last_login: String,
    accounts: Vec<AccountView>,
    events: Vec<EventView>,
    sessions: i64,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

pub(crate) async fn user_detail(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<DoneQuery>,
) -> HttpResponse {
    let id = path.into_inner();
    let result = store::run(&state.pool, move |conn| {
        let Some(user) = User::find(conn, id)? else {
            return Ok(None);
        };
        let accounts = SocialAccount::for_user(conn, id)?;
        let events = audit_events::recent_for_user(conn, id, 50)?;
        let sessions = sessions::count_for_user(conn, id)?;
        Ok(Some((user, accounts, events, sessions)))
    })
    .await;
    let (user, accounts, events, sessions) = match result {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(),
        Err(e) => return db_failed(e),
    };
    let notice = match query.done.as_deref() {
        Some("deactivate") => Some("The user was deactivated."),
        Some("reactivate") => Some("The user was reactivated."),
        Some("unlink") => Some("The account was unlinked."),
        Some("signout") => Some("The user was signed out everywhere."),
        _ => None,
    };
    html(&UserPage {
        created: fmt_time(user.created_at),
        last_login: fmt_opt(user.last_login_at),
        accounts: accounts
            .into_iter()
            .map(|a| AccountView {
                claims: pretty_json(&a.extra_data),
                id: a.id,
                provider: a.provider,
                uid: a.uid,
                created: fmt_time(a.created_at),
                last_login: fmt_opt(a.last_login_at),
            })
            .collect(),
        events: events
            .into_iter()
            .map(|e| EventView::of(e, Some(user.username.clone()), None))
            .collect(),
        sessions,
        user,
        notice,
    })
}

fn pretty_json(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| raw.to_string())
}

/// The question each action's confirm page asks.
fn question(action: Action) -> &'static str {
    match action {
        Action::Deactivate => {
            "Deactivate this user? They are refused at login, on the token endpoint and with \
             bearer tokens until reactivated."
        }
        Action::Reactivate => "Reactivate this user?",
        Action::Unlink => {
            "Unlink this account? The next login of its Keycloak subject creates a new user."
        }
        Action::SignOut => "Sign this user out of Keycloak and end all of their keygate sessions?",
    }
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage<'a> {
    user: &'a User,
    action: &'static str,
    question: &'static str,
    account_id: Option<i64>,
    csrf_token: &'a str,
}

#[derive(Deserialize)]
pub(crate) struct ConfirmQuery {
    account: Option<i64>,
}

pub(crate) async fn confirm(
    _admin: Admin,
    state: web::Data<AppState>,
    session: TypedSession,
    path: web::Path<(i64, String)>,
    query: web::Query<ConfirmQuery>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let Some(action) = Action::parse(&action) else {
        return not_found();
    };
    let user = match store::run(&state.pool, move |conn| Ok(User::find(conn, id)?)).await {
        Ok(Some(u)) => u,
        Ok(None) => return not_found(),
        Err(e) => return db_failed(e),
    };
    with_csrf(&session, |csrf_token| {
        html(&ConfirmPage {
            user: &user,
            action: action.name(),
            question: question(action),
            account_id: query.account,
            csrf_token,
        })
    })
}

#[derive(Deserialize)]
pub(crate) struct ActionForm {
    account_id: Option<i64>,
}

/// POST /admin/users/{id}/{action}: runs a confirmed action and records it, with the acting
/// admin, in the same transaction.
pub(crate) async fn act(
    admin: Admin,
    ctx: AuditContext,
    state: web::Data<AppState>,
    path: web::Path<(i64, String)>,
    CsrfForm(form): CsrfForm<ActionForm>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let Some(action) = Action::parse(&action) else {
        return not_found();
    };
    let accounts = match admin_actions::accounts_of(&state.pool, id).await {
        Ok(Some(a)) => a,
        Ok(None) => return not_found(),
        Err(e) => return db_failed(e),
    };
    if action == Action::SignOut {
        // Keycloak first: it ends the SSO sessions and calls back-channel logout.
        for account in accounts.iter().filter(|a| a.provider == KEYCLOAK) {
            if let Err(e) = state.admin.logout_user(&account.uid).await {
                log::warn!("admin sign-out: Keycloak refused for {}: {e}", account.uid);
                return error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Keycloak did not sign the user out",
                    "Keycloak could not be reached or refused; nothing was changed here. Try again.",
                );
            }
        }
    }
    let act = AdminAction {
        action,
        user_id: id,
        actor_id: admin.0.user.id,
        account_id: form.account_id,
        subjects: accounts
            .iter()
            .filter(|a| a.provider == KEYCLOAK)
            .map(|a| a.uid.clone())
            .collect(),
    };
    match admin_actions::apply(&state.pool, &state.revocations, &ctx, act).await {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(e) => return db_failed(e),
    }
    // Caches on this instance forget the user at once.
    state.users.forget_user(id);
    for account in &accounts {
        state.access_tokens.forget_subject(&account.uid);
    }
    see_other(&format!("/admin/users/{id}?done={}", action.name()))
}
