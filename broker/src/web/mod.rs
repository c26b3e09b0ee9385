//! The approvers' web page (`/approvals`): sign in through the identity provider, see pending requests, approve or deny.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/approvals` | the list (signed in), else a redirect to the identity provider |
//! | GET | `/approvals/callback` | the provider's answer: `code` + `state` |
//! | POST | `/approvals/{id}/approve` | form: `csrf`, `comment` (optional) |
//! | POST | `/approvals/{id}/deny` | form: `csrf`, `comment` (required) |
//! | POST | `/approvals/signout` | form: `csrf` |
//!
//! Decisions, and why:
//! - Sign-in is the OIDC authorization code flow with PKCE (`S256`) against
//!   the same issuer hoopctl uses, found through discovery ([`oidc`]): the
//!   built-in provider in `dev`, an organisation's otherwise. The broker is
//!   the configured public client; redirect URI `{public_url}/approvals/callback`.
//! - `state` is random, kept server-side with the PKCE verifier, and also
//!   set as a short-lived cookie: the callback must come back to the browser
//!   that started the sign-in (no login CSRF), once, within ten minutes. An
//!   `iss` parameter (RFC 9207) must name our issuer.
//! - The access token from the exchange is validated by the same
//!   [`crate::auth::Authenticator`] as every API call, then dropped: the page
//!   session holds only the resulting identity. PKCE stands in for `nonce`
//!   (RFC 9700 §2.1.1), since the ID token is not what we rely on.
//! - The session cookie is a random value (`HttpOnly; Secure; SameSite=Lax`,
//!   path `/approvals`) naming a server-side entry ([`sessions`]) that ends
//!   with the token's expiry, after at most eight hours, or on sign-out.
//! - Every form carries the session's CSRF token, compared in constant time.
//!   Results are shown after a 303 redirect (post/redirect/get), so a reload
//!   never repeats a decision.
//! - The list and the decisions go through the API's own code
//!   ([`crate::api::requests`]: `decidable_by`, `decide`), so checks
//!   (self-approval, approver groups, N-of-M, closed requests) and audit
//!   events are the same whichever door a decision comes through.

mod html;
pub mod oidc;
pub mod sessions;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use hoop_shared::Secret;
use hoop_shared::api::{ApiErrorBody, IdentityKind, RequestState};

use crate::api::ApiFailure;
use crate::api::requests;
use crate::app::{AppState, now_unix};
use crate::store::Decision;
use oidc::{OidcError, Pkce, Provider};
use sessions::{Flash, Sessions};

/// The session cookie.
const SESSION_COOKIE: &str = "hoop_approvals";
/// The cookie holding `state` while a sign-in is at the provider.
const LOGIN_COOKIE: &str = "hoop_approvals_login";
/// Forms are tiny.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// What the pages share.
pub struct Web {
    app: Arc<AppState>,
    provider: Provider,
    sessions: Sessions,
    /// `{public_url path}/approvals`: links, form actions, cookie path.
    base: String,
}

/// The pages' router, to merge into the API router.
pub fn router(app: Arc<AppState>) -> Router {
    let prefix = url::Url::parse(&app.public_url)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let base = format!("{prefix}/approvals");
    let provider = Provider::new(
        app.idp_http.clone(),
        &app.verifier.person().settings().issuer,
        &app.config.identity.client_id,
        &app.config.identity.scopes,
        format!("{}/approvals/callback", app.public_url),
    );
    let web = Arc::new(Web {
        app,
        provider,
        sessions: Sessions::default(),
        base,
    });
    Router::new()
        .route("/approvals", get(list))
        .route("/approvals/", get(list))
        .route("/approvals/callback", get(callback))
        .route("/approvals/signout", post(sign_out))
        .route("/approvals/{id}/approve", post(approve))
        .route("/approvals/{id}/deny", post(deny))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(web)
}

/// The value of cookie `name`, from any `Cookie` header.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Web {
    fn set_cookie(&self, name: &str, value: &str, max_age: u64) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "{name}={value}; HttpOnly; Secure; SameSite=Lax; Path={}; Max-Age={max_age}",
            self.base
        ))
        .ok()
    }

    fn redirect(&self, to: &str, cookies: &[(&str, &str, u64)]) -> Response {
        let mut resp =
            (StatusCode::SEE_OTHER, [(header::CACHE_CONTROL, "no-store")]).into_response();
        if let Ok(loc) = HeaderValue::from_str(to) {
            resp.headers_mut().insert(header::LOCATION, loc);
        }
        for (name, value, max_age) in cookies {
            if let Some(c) = self.set_cookie(name, value, *max_age) {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
        }
        resp
    }

    fn provider_problem(&self, e: &OidcError) -> Response {
        tracing::warn!("approvals page sign-in: {e}");
        let status = match e {
            OidcError::Refused(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_GATEWAY,
        };
        html::problem(
            status,
            "Cannot sign in",
            &e.to_string(),
            &self.base,
            "Try again",
        )
    }

    /// Sends the browser to the identity provider.
    async fn begin_sign_in(&self) -> Response {
        let state = Secret::generate(32);
        let pkce = Pkce::generate();
        let url = match self
            .provider
            .authorization_url(state.expose(), &pkce.challenge)
            .await
        {
            Ok(u) => u,
            Err(e) => return self.provider_problem(&e),
        };
        if let Err(e) = self.sessions.start_login(&state, pkce.verifier, now_unix()) {
            return html::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot sign in",
                &e.to_string(),
                &self.base,
                "Try again",
            );
        }
        self.redirect(
            &url,
            &[(LOGIN_COOKIE, state.expose(), sessions::LOGIN_TTL.as_secs())],
        )
    }

    /// The signed-in person's session id, csrf check included when `form` is given.
    fn session_of<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let c = cookie(headers, SESSION_COOKIE)?;
        self.sessions.with(c, now_unix(), |_| ()).map(|()| c)
    }

    fn session_ended(&self) -> Response {
        html::problem(
            StatusCode::UNAUTHORIZED,
            "Your session has ended",
            "Sign in again to continue; nothing was decided.",
            &self.base,
            "Sign in",
        )
    }
}

async fn list(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    let now = now_unix();
    let Some(c) = cookie(&headers, SESSION_COOKIE) else {
        return web.begin_sign_in().await;
    };
    let Some((who, csrf, flash)) = web.sessions.with(c, now, |s| {
        (s.who.clone(), Secret::new(s.csrf.expose()), s.flash.take())
    }) else {
        return web.begin_sign_in().await;
    };
    let decidable = match requests::decidable_by(&web.app, &who).await {
        Ok(v) => v,
        Err(f) => return failure_page(&web, f).await,
    };
    let own = match web
        .app
        .store
        .requests_of(&who.subject, requests::LIST_LIMIT)
        .await
    {
        Ok(rows) => rows
            .iter()
            .map(|r| requests::view(r, now))
            .filter(|v| v.state == RequestState::Pending)
            .collect::<Vec<_>>(),
        Err(e) => {
            return failure_page(&web, ApiFailure::internal("list access requests", &e)).await;
        }
    };
    html::list(&html::ListPage {
        user: &who.user,
        groups: &who.groups,
        base: &web.base,
        csrf: csrf.expose(),
        flash,
        decidable: &decidable,
        own: &own,
        now,
    })
}

async fn callback(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = now_unix();
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| params.get(k).map(String::as_str);
    let restart = |msg: &str| {
        html::problem(
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            msg,
            &web.base,
            "Sign in again",
        )
    };
    // The answer must belong to a sign-in this browser started.
    let state = get("state").unwrap_or_default();
    let own = cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|c| !state.is_empty() && Secret::new(c).matches(state.as_bytes()));
    if !own {
        return restart("This sign-in was not started in this browser, or it took too long.");
    }
    let Some(verifier) = web.sessions.finish_login(state, now) else {
        return restart("This sign-in is unknown, expired or already finished.");
    };
    if get("iss").is_some_and(|iss| iss.trim_end_matches('/') != web.provider.issuer()) {
        return restart("The answer came from another identity provider than the broker's.");
    }
    if let Some(error) = get("error") {
        let why = get("error_description").unwrap_or(error);
        let why: String = why.chars().take(200).collect();
        return restart(&format!(
            "The identity provider did not sign you in: {why}."
        ));
    }
    let Some(code) = get("code") else {
        return restart("The identity provider's answer holds no code.");
    };
    let token = match web.provider.exchange(code, &verifier).await {
        Ok(t) => t,
        Err(e) => return web.provider_problem(&e),
    };
    let who = match web.app.verifier.verify(token.expose()).await {
        Ok(who) if who.kind == IdentityKind::Person => who,
        Ok(_) => return restart("Only people sign in here."),
        Err(e) => {
            tracing::warn!("approvals page: the provider's token was refused: {e}");
            return restart(&format!("The broker refused the sign-in: {e}."));
        }
    };
    let expires_at = who.expires_at.min(now + sessions::SESSION_TTL.as_secs());
    let user = who.user.clone();
    let cookie_value = match web.sessions.create(who, expires_at, now) {
        Ok(c) => c,
        Err(e) => return restart(&e.to_string()),
    };
    tracing::info!(%user, "signed in to the approvals page");
    web.redirect(
        &web.base,
        &[
            (
                SESSION_COOKIE,
                cookie_value.expose(),
                expires_at.saturating_sub(now),
            ),
            (LOGIN_COOKIE, "", 0),
        ],
    )
}

/// A form's fields; a repeated field is refused (`None`).
fn form_fields(body: &[u8]) -> Option<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return None;
        }
    }
    Some(out)
}

/// A form post from a signed-in person, past the CSRF check.
struct Checked {
    session: String,
    who: crate::auth::Identity,
    comment: Option<String>,
}

/// The session id and identity behind a form post, after the CSRF check;
/// `Err` is the page to answer with.
fn check_form(web: &Web, headers: &HeaderMap, body: &[u8]) -> Result<Checked, Box<Response>> {
    let Some(c) = web.session_of(headers) else {
        return Err(Box::new(web.session_ended()));
    };
    let fields = form_fields(body).ok_or_else(|| {
        Box::new(html::problem(
            StatusCode::BAD_REQUEST,
            "Cannot do that",
            "A field was sent twice.",
            &web.base,
            "Back to the list",
        ))
    })?;
    let presented = fields.get("csrf").map_or("", String::as_str);
    let who = web
        .sessions
        .with(c, now_unix(), |s| {
            s.csrf.matches(presented.as_bytes()).then(|| s.who.clone())
        })
        .flatten()
        .ok_or_else(|| {
            Box::new(html::problem(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form does not belong to your current session; nothing was decided.",
                &web.base,
                "Reload the list",
            ))
        })?;
    Ok(Checked {
        session: c.to_owned(),
        who,
        comment: fields.get("comment").cloned(),
    })
}

async fn approve(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    decide(web, headers, id, body, Decision::Approve).await
}

async fn deny(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    decide(web, headers, id, body, Decision::Deny).await
}

async fn decide(
    web: Arc<Web>,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    decision: Decision,
) -> Response {
    let Checked {
        session,
        who,
        comment,
    } = match check_form(&web, &headers, &body) {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let flash = match requests::clean_text(
        comment,
        if decision == Decision::Deny {
            "reason"
        } else {
            "comment"
        },
    ) {
        Err(f) => failure_flash(f).await,
        Ok(None) if decision == Decision::Deny => Flash {
            ok: false,
            text: "Denying needs a reason the requester will read.".into(),
        },
        Ok(comment) => match requests::decide(web.app.clone(), who, id, decision, comment).await {
            Ok(axum::Json(view)) => Flash {
                ok: true,
                text: outcome(&view, decision),
            },
            Err(f) => failure_flash(f).await,
        },
    };
    web.sessions
        .with(&session, now_unix(), |s| s.flash = Some(flash));
    web.redirect(&web.base, &[])
}

/// The confirmation after a decision.
fn outcome(view: &hoop_shared::api::AccessRequestView, decision: Decision) -> String {
    let whose = format!("{}'s request for {}", view.requester, view.connection);
    match (decision, view.state) {
        (Decision::Deny, _) => format!("Denied {whose}."),
        (_, RequestState::Approved) => {
            let until = view
                .grant_ends_at
                .and_then(|t| jiff::Timestamp::from_second(i64::try_from(t).ok()?).ok())
                .map(|t| format!(" until {}", t.strftime("%Y-%m-%d %H:%M:%S UTC")))
                .unwrap_or_default();
            format!("Approved {whose}: access is granted{until}.")
        }
        _ => {
            let got = view
                .approvals
                .iter()
                .filter(|a| a.decision == Decision::Approve.as_str())
                .count();
            format!(
                "Approved {whose}: {got} of {} approvals so far.",
                view.approvals_needed
            )
        }
    }
}

/// The message (and hint) of an API refusal, as the API would have said it.
async fn failure_text(f: ApiFailure) -> String {
    let resp = f.into_response();
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    match serde_json::from_slice::<ApiErrorBody>(&body) {
        Ok(b) => match b.error.hint {
            Some(h) if !h.contains("hoopctl") => format!("{} ({h})", b.error.message),
            _ => b.error.message,
        },
        Err(_) => "the broker could not do that".into(),
    }
}

async fn failure_flash(f: ApiFailure) -> Flash {
    Flash {
        ok: false,
        text: failure_text(f).await,
    }
}

async fn failure_page(web: &Web, f: ApiFailure) -> Response {
    let status = f.status();
    let text = failure_text(f).await;
    html::problem(
        status,
        "Something went wrong",
        &text,
        &web.base,
        "Try again",
    )
}

async fn sign_out(State(web): State<Arc<Web>>, headers: HeaderMap, body: Bytes) -> Response {
    match check_form(&web, &headers, &body) {
        Ok(Checked { session, who, .. }) => {
            web.sessions.remove(&session, now_unix());
            tracing::info!(user = %who.user, "signed out of the approvals page");
        }
        // Already signed out: say so all the same.
        Err(_) if web.session_of(&headers).is_none() => {}
        Err(page) => return *page,
    }
    let mut resp = html::signed_out(&web.base);
    if let Some(c) = web.set_cookie(SESSION_COOKIE, "", 0) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name_across_headers() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; hoop_approvals_login=L"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("hoop_approvals=S"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("S"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), Some("L"));
        assert_eq!(cookie(&h, "hoop"), None);
    }

    #[test]
    fn repeated_form_fields_are_refused() {
        assert!(form_fields(b"csrf=a&comment=x").is_some());
        assert!(form_fields(b"csrf=a&csrf=b").is_none());
    }
}
