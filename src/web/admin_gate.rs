//! The admin pages' gate: a middleware on their scope that lets only users with the admin role
//! in, and the [`Admin`] extractor their handlers take.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;

use super::auth::Authenticated;
use super::response::error_page_with_retry;
use super::roles::{check_roles, Role, RoleRejection};
use super::AppState;

/// An authenticated user with the admin role: what the admin pages' handlers take.
#[derive(Clone)]
pub(crate) struct Admin(pub Authenticated);

/// Why the admin gate refused a request: a role check's answer, with its own 403 page.
#[derive(Debug)]
pub(crate) struct AdminRejection(RoleRejection);

impl std::fmt::Display for AdminRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for AdminRejection {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        if !self.0.is_missing_role_on_page() {
            return self.0.error_response();
        }
        error_page_with_retry(
            StatusCode::FORBIDDEN,
            "Administrators only",
            "Your account does not have the administrator role needed for these pages.",
            "/",
            "Home",
        )
    }
}

/// The admin role counts as a realm role or as a role of keygate's own client.
async fn check_admin(req: &HttpRequest) -> Result<Admin, AdminRejection> {
    let roles = {
        let s = req
            .app_data::<web::Data<AppState>>()
            .expect("AppState is registered by the app factory");
        [
            Role::realm(&s.settings.admin_role),
            Role::client(&s.settings.client_id, &s.settings.admin_role),
        ]
    };
    check_roles(req, &roles)
        .await
        .map(Admin)
        .map_err(AdminRejection)
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
