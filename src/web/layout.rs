//! [`Page`]: an application's own Askama pages inside keygate's layout (stylesheet, the nav
//! with the application's links, the signed-in user and the sign-out form with its CSRF token).

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use askama::Template;
use futures_util::future::LocalBoxFuture;

use super::auth::AuthError;
use super::response::{login_path, page, unexpected_page};
use super::user::maybe_authenticated;
use super::AppState;
use crate::domain::next_url::NextUrl;
use crate::session::TypedSession;
use crate::store::User;

/// A link in the nav of every page rendered through [`Page`], added with
/// [`Keygate::nav_link`](crate::Keygate::nav_link).
#[derive(Clone, Debug)]
pub(crate) struct NavLink {
    pub label: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "layout.html")]
struct Layout<'a> {
    title: &'a str,
    content: &'a str,
    links: &'a [NavLink],
    user: Option<&'a User>,
    is_admin: bool,
    csrf_token: &'a str,
    login_href: &'a str,
}

/// keygate's layout for an application's page, taken as an extractor. Render your own template
/// (any `askama::Template`) inside it:
///
/// ```no_run
/// use actix_web::HttpResponse;
/// use askama::Template;
/// use keygate::Page;
///
/// #[derive(Template)]
/// #[template(source = "<h1>Hello</h1><form method=post action=/hello>\
///     <input type=hidden name=csrf_token value='{{ csrf_token }}'></form>", ext = "html")]
/// struct Hello {
///     csrf_token: String,
/// }
///
/// async fn hello(page: Page) -> HttpResponse {
///     let content = Hello { csrf_token: page.csrf_token() };
///     page.render("Hello", &content)
/// }
/// ```
///
/// Works for anonymous visitors too (the nav then offers "Sign in"). Pages are sent with
/// `Cache-Control: no-store`: they show per-user data and CSRF tokens.
pub struct Page {
    user: Option<Arc<User>>,
    is_admin: bool,
    session: TypedSession,
    links: Arc<[NavLink]>,
    login_href: String,
}

impl Page {
    /// This session's CSRF token, for the `csrf_token` field of a form that [`CsrfForm`](crate::CsrfForm)
    /// will check. Anonymous visitors get one too (it starts their session).
    pub fn csrf_token(&self) -> String {
        self.session.csrf_token().unwrap_or_else(|_| {
            // The form will then be refused as expired, which is the safe way to fail.
            log::error!("could not store a CSRF token in the session");
            String::new()
        })
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&User> {
        self.user.as_deref()
    }

    /// `content` inside the layout, titled `title`, with status 200.
    pub fn render(&self, title: &str, content: &impl Template) -> HttpResponse {
        self.render_with_status(StatusCode::OK, title, content)
    }

    /// `content` inside the layout with `status` (a form shown again with its errors: 422).
    pub fn render_with_status(
        &self,
        status: StatusCode,
        title: &str,
        content: &impl Template,
    ) -> HttpResponse {
        let content = match content.render() {
            Ok(c) => c,
            Err(e) => return unexpected_page(&anyhow::Error::new(e)),
        };
        // Only a signed-in page shows the sign-out form, so only it needs the token.
        let csrf_token = match self.user {
            Some(_) => self.csrf_token(),
            None => String::new(),
        };
        page(
            status,
            &Layout {
                title,
                content: &content,
                links: &self.links,
                user: self.user.as_deref(),
                is_admin: self.is_admin,
                csrf_token: &csrf_token,
                login_href: &self.login_href,
            },
        )
    }
}

impl FromRequest for Page {
    type Error = AuthError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .expect("AppState is registered by the app factory")
                .clone();
            let auth = maybe_authenticated(&req).await?;
            let session = TypedSession::from_request(&req, &mut Payload::None)
                .await
                .map_err(|e| AuthError::internal(&req, &state, anyhow::anyhow!("session: {e}")))?;
            let here = req.uri().path_and_query().map(|p| p.as_str());
            Ok(Page {
                is_admin: auth.as_ref().is_some_and(|a| state.is_admin(a)),
                user: auth.map(|a| a.user),
                session,
                links: state.nav_links.clone(),
                login_href: login_path(&NextUrl::parse(here)),
            })
        })
    }
}
