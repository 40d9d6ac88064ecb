//! [`Error`]: what an application's handlers return when they fail. It carries only a status
//! and a sentence; the error handler then renders it as keygate's page or, under `/api/`, as the
//! JSON error, so the application never has to know which.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::store::DbError;

/// An application handler's failure, answered as keygate's error page or (under `/api/`) as
/// `{"error": {"code", "message", "details"}}`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404: there is nothing here *for this user* (also the answer for someone else's item, so
    /// that ids of other users' things are not confirmed).
    #[error("not found")]
    NotFound,
    /// 400 with a sentence the user can act on.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 403 with a sentence saying what is missing.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 500; the cause chain goes to the log, never into the response.
    #[error("database error")]
    Database(#[from] DbError),
    /// 500; the cause chain goes to the log, never into the response.
    #[error("unexpected error")]
    Internal(#[from] anyhow::Error),
}

/// The sentence an [`Error`] leaves for the error handler, which knows the request's path.
#[derive(Clone, Debug)]
pub(crate) struct ErrorMessage {
    pub code: &'static str,
    pub message: String,
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, message) = match self {
            Error::NotFound => ("not_found", "There is nothing at this address.".to_string()),
            Error::BadRequest(m) => ("bad_request", m.clone()),
            Error::Forbidden(m) => ("forbidden", m.clone()),
            Error::Database(e) => {
                log::error!("application error: {}", crate::util::error_chain(e));
                (
                    "internal_error",
                    "Something went wrong; nothing was changed.".into(),
                )
            }
            Error::Internal(e) => {
                log::error!("application error: {e:#}");
                (
                    "internal_error",
                    "Something went wrong; nothing was changed.".into(),
                )
            }
        };
        let mut response = HttpResponse::build(self.status_code()).finish();
        response
            .extensions_mut()
            .insert(ErrorMessage { code, message });
        response
    }
}
