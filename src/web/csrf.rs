//! Forms that change something carry this session's CSRF token in a `csrf_token` field.
//! [`CsrfForm`] is such a form, checked before the handler runs: a mismatch answers the "Form
//! expired" page (403) and the handler never sees it.

use actix_web::http::{header, StatusCode};
use actix_web::web::Bytes;
use actix_web::{dev::Payload, error::InternalError, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::response::error_page;
use crate::session::TypedSession;

/// Largest form body read.
const LIMIT: usize = 64 * 1024;

/// A URL-encoded form whose `csrf_token` field is this session's CSRF token (the one
/// [`Page::csrf_token`](crate::Page::csrf_token) puts into your form). `T` holds the other
/// fields and need not declare `csrf_token`.
///
/// ```no_run
/// use actix_web::HttpResponse;
/// use keygate::CsrfForm;
///
/// #[derive(serde::Deserialize)]
/// struct NewNote {
///     title: String,
/// }
///
/// async fn add(CsrfForm(form): CsrfForm<NewNote>) -> HttpResponse {
///     HttpResponse::SeeOther().insert_header(("Location", "/notes")).finish()
/// }
/// ```
pub struct CsrfForm<T>(pub T);

#[derive(serde::Deserialize)]
struct Token {
    #[serde(default)]
    csrf_token: String,
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        let body = Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let body = body.await.map_err(|e| unreadable(e.to_string()))?;
            if !form_type || body.len() > LIMIT {
                return Err(unreadable("not a URL-encoded form within 64 KiB".into()));
            }
            let token: Token =
                serde_urlencoded::from_bytes(&body).map_err(|e| unreadable(e.to_string()))?;
            let session = TypedSession::from_request(&req, &mut Payload::None).await?;
            session.check_csrf(&token.csrf_token)?;
            let form =
                serde_urlencoded::from_bytes(&body).map_err(|e| unreadable(e.to_string()))?;
            Ok(CsrfForm(form))
        })
    }
}

/// The 400 page for a form keygate cannot read; why goes to the log only, clipped.
fn unreadable(why: String) -> actix_web::Error {
    log::info!("unreadable form: {}", crate::util::for_log(&why, 200));
    let page = error_page(
        StatusCode::BAD_REQUEST,
        "Bad request",
        "The form could not be read. Go back and try again.",
    );
    InternalError::from_response(why, page).into()
}

/// A form that carries nothing but its CSRF token.
#[derive(serde::Deserialize)]
pub(crate) struct CsrfOnly {}
