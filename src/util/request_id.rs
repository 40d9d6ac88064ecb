//! The request id: one per HTTP request, taken from a well-formed incoming `X-Request-Id` or
//! made here, and known to everything that runs for the request (its log lines, its error page)
//! through a task-local, without threading it through every call.

use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static CURRENT: Arc<str>;
}

/// An incoming id is kept when it is 1 to 64 characters of `A-Z a-z 0-9 . _ -` (anything else
/// could forge log lines or headers), otherwise a new one is made.
pub(crate) fn accept_or_make(incoming: Option<&str>) -> Arc<str> {
    match incoming {
        Some(id)
            if (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            id.into()
        }
        _ => super::random_token(12).into(),
    }
}

/// Runs `work` with `id` as the current request id.
pub(crate) async fn scope<F: Future>(id: Arc<str>, work: F) -> F::Output {
    CURRENT.scope(id, work).await
}

/// The id of the request being served, if any.
pub fn current() -> Option<Arc<str>> {
    CURRENT.try_with(Arc::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_incoming_ids_are_kept() {
        assert_eq!(&*accept_or_make(Some("abc-123_X.y")), "abc-123_X.y");
        for bad in ["", "a b", "a\nb", "é", &"x".repeat(65)] {
            let made = accept_or_make(Some(bad));
            assert_ne!(&*made, bad);
            assert_eq!(made.len(), 16, "a fresh id");
        }
    }

    #[tokio::test]
    async fn the_id_is_known_inside_its_scope_only() {
        assert!(current().is_none());
        let seen = scope("r1".into(), async { current() }).await;
        assert_eq!(seen.as_deref(), Some("r1"));
    }
}
