//! The audit log page.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{db_failed, html, Admin, EventView, PAGE_SIZE};
use crate::db;
use crate::models::audit::{self, AuditKind};
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct AuditQuery {
    kind: Option<String>,
    user: Option<i64>,
    page: Option<i64>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    events: Vec<EventView>,
    kinds: Vec<&'static str>,
    kind: String,
    user: String,
    total: i64,
    page: i64,
    pages: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

fn audit_href(kind: &str, user: &str, page: i64) -> String {
    let mut u = url::Url::parse("http://x/admin/audit").expect("static URL");
    u.query_pairs_mut()
        .append_pair("kind", kind)
        .append_pair("user", user)
        .append_pair("page", &page.to_string());
    format!("/admin/audit?{}", u.query().unwrap_or_default())
}

pub async fn audit_log(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> HttpResponse {
    let kind = query.kind.as_deref().and_then(AuditKind::parse);
    let user = query.user;
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let result = db::run(&state.pool, move |conn| {
        Ok(audit::page(
            conn,
            kind,
            user,
            (page - 1) * PAGE_SIZE,
            PAGE_SIZE,
        )?)
    })
    .await;
    let (rows, total) = match result {
        Ok(r) => r,
        Err(e) => return db_failed(e),
    };
    let kind_name = kind.map(AuditKind::as_str).unwrap_or("").to_string();
    let user_text = user.map(|u| u.to_string()).unwrap_or_default();
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    html(&AuditPage {
        events: rows
            .into_iter()
            .map(|(e, name)| EventView::of(e, name))
            .collect(),
        kinds: AuditKind::ALL.iter().map(|k| k.as_str()).collect(),
        prev_href: (page > 1).then(|| audit_href(&kind_name, &user_text, page - 1)),
        next_href: (page < pages).then(|| audit_href(&kind_name, &user_text, page + 1)),
        kind: kind_name,
        user: user_text,
        total,
        page,
        pages,
    })
}
