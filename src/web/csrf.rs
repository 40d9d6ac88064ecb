//! Forms that change something carry this session's CSRF token. [`Checked`] is such a form,
//! checked before the handler runs: a mismatch answers the "Form expired" page and the handler
//! never sees it.

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::session::TypedSession;

/// A form with a `csrf_token` field.
pub(crate) trait CsrfProtected {
    fn csrf_token(&self) -> &str;
}

/// A URL-encoded form whose CSRF token is this session's.
pub(crate) struct Checked<T>(pub T);

impl<T: DeserializeOwned + CsrfProtected + 'static> FromRequest for Checked<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form = web::Form::<T>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let form = form.await?.into_inner();
            let session = TypedSession::from_request(&req, &mut Payload::None).await?;
            session.check_csrf(form.csrf_token())?;
            Ok(Checked(form))
        })
    }
}

/// A form that carries nothing but its CSRF token.
#[derive(serde::Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

impl CsrfProtected for CsrfOnly {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}
