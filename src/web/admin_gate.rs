//! The admin pages' gate: a middleware on their scope that lets only users with the admin role
//! in, and the [`Admin`] extractor their handlers take.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;

use super::auth::{authenticate, AuthError, Authenticated};
use super::response::{error_page_with_retry, unavailable_page};
use super::AppState;
use crate::idp::Unavailable;

/// An authenticated user with the admin role: what the admin pages' handlers take.
#[derive(Clone)]
pub(crate) struct Admin(pub Authenticated);

/// Why the admin gate refused a request.
#[derive(Debug)]
pub(crate) enum AdminRejection {
    Auth(AuthError),
    /// The session's token expired and Keycloak cannot be reached: no role can be trusted.
    RolesUnavailable(Unavailable),
    NotAdmin,
}

impl std::fmt::Display for AdminRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminRejection::Auth(e) => write!(f, "{e}"),
            AdminRejection::RolesUnavailable(u) => write!(f, "{u}"),
            AdminRejection::NotAdmin => f.write_str("not an admin"),
        }
    }
}

impl ResponseError for AdminRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminRejection::Auth(e) => e.status_code(),
            AdminRejection::RolesUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminRejection::NotAdmin => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AdminRejection::Auth(e) => e.error_response(),
            AdminRejection::RolesUnavailable(u) => unavailable_page(u),
            AdminRejection::NotAdmin => error_page_with_retry(
                StatusCode::FORBIDDEN,
                "Administrators only",
                "Your account does not have the administrator role needed for these pages.",
                "/",
                "Home",
            ),
        }
    }
}

async fn check_admin(req: &HttpRequest) -> Result<Admin, AdminRejection> {
    let auth = authenticate(req).await.map_err(AdminRejection::Auth)?;
    if let Some(u) = &auth.roles_unavailable {
        return Err(AdminRejection::RolesUnavailable(u.clone()));
    }
    let allowed = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.is_admin(&auth));
    if !allowed {
        log::warn!("user {} was refused the admin pages", auth.user.id);
        return Err(AdminRejection::NotAdmin);
    }
    Ok(Admin(auth))
}

/// The middleware of the admin scope: only users with the admin role get in; the checked
/// [`Admin`] travels to the handler in the request's extensions.
pub(crate) async fn admin_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match check_admin(req.request()).await {
        Ok(admin) => {
            req.extensions_mut().insert(admin);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(rejection) => Ok(req
            .into_response(rejection.error_response())
            .map_into_right_body()),
    }
}

impl FromRequest for Admin {
    type Error = AdminRejection;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    /// The admin the gate let in; checked here again when a route outside the gate asks.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let gated = req.extensions().get::<Admin>().cloned();
            match gated {
                Some(admin) => Ok(admin),
                None => check_admin(&req).await,
            }
        })
    }
}
