//! The admin dashboard: counts and logins per day.

use actix_web::{web, HttpResponse};
use askama::Template;

use super::{db_failed, fmt_time, html};
use crate::domain::audit::AuditKind;
use crate::store::{self, audit_events, User};
use crate::util::now;
use crate::web::admin_gate::Admin;
use crate::web::AppState;

/// One bar of the logins-per-day chart, in SVG user units.
pub(crate) struct Bar {
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
    pub count: i64,
    pub label: String,
    pub show_label: bool,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    users: i64,
    active: i64,
    logins_day: i64,
    logins_week: i64,
    bars: Vec<Bar>,
    max: i64,
    chart_width: i64,
    chart_height: i64,
}

const DAYS: i64 = 30;
const CHART_HEIGHT: i64 = 120;
const BAR_STEP: i64 = 20;

/// Bars for the last [`DAYS`] UTC days, today last, from `(day number, count)` pairs.
fn chart(counts: &[(i64, i64)], today: i64) -> (Vec<Bar>, i64) {
    let per_day: Vec<i64> = (0..DAYS)
        .map(|i| {
            let day = today - (DAYS - 1) + i;
            counts
                .iter()
                .find(|(d, _)| *d == day)
                .map_or(0, |(_, n)| *n)
        })
        .collect();
    let max = per_day.iter().copied().max().unwrap_or(0).max(1);
    let bars = per_day
        .into_iter()
        .enumerate()
        .map(|(i, count)| {
            let i = i as i64;
            let day = today - (DAYS - 1) + i;
            let height = count * (CHART_HEIGHT - 20) / max;
            Bar {
                x: i * BAR_STEP,
                y: CHART_HEIGHT - 16 - height,
                width: BAR_STEP - 4,
                height,
                count,
                label: fmt_time(day * 86400)[5..10].to_string(),
                show_label: i % 5 == 4,
            }
        })
        .collect();
    (bars, max)
}

pub(crate) async fn dashboard(_admin: Admin, state: web::Data<AppState>) -> HttpResponse {
    let t = now();
    let today = t / 86400;
    let stats = store::run(&state.pool, move |conn| {
        let login = AuditKind::Login.as_str();
        let (users, active) = User::count_all(conn)?;
        let day = audit_events::count_since(conn, login, t - 86400)?;
        let week = audit_events::count_since(conn, login, t - 7 * 86400)?;
        let per_day = audit_events::logins_per_day(conn, (today - (DAYS - 1)) * 86400)?;
        Ok((users, active, day, week, per_day))
    })
    .await;
    let (users, active, logins_day, logins_week, per_day) = match stats {
        Ok(s) => s,
        Err(e) => return db_failed(e),
    };
    let (bars, max) = chart(&per_day, today);
    html(&DashboardPage {
        users,
        active,
        logins_day,
        logins_week,
        bars,
        max,
        // Room for the last day's label.
        chart_width: DAYS * BAR_STEP + 24,
        chart_height: CHART_HEIGHT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_thirty_days_scaled_to_the_busiest() {
        let today = 20_000;
        let (bars, max) = chart(&[(today, 10), (today - 29, 5), (today - 40, 99)], today);
        assert_eq!(bars.len(), 30);
        assert_eq!(max, 10);
        assert_eq!(bars[29].count, 10);
        assert_eq!(bars[0].count, 5);
        assert_eq!(bars[29].height, CHART_HEIGHT - 20);
        assert_eq!(bars[0].height, (CHART_HEIGHT - 20) / 2);
        assert!(bars[1..29].iter().all(|b| b.count == 0 && b.height == 0));
    }
}
