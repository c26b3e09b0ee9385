//! HTML for the development provider's sign-in pages: the device verification page (`/device`) and the authorization page (`/authorize`), one user picker.
//!
//! Everything interpolated is HTML-escaped; the pages load nothing external,
//! and the response headers forbid framing and any script.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};

use crate::config::DevUser;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;\
padding:0 1rem;color:#1f2328;line-height:1.5}h1{font-size:1.4rem}\
.note{color:#656d76;font-size:.9rem}input[type=text]{font:1.4rem ui-monospace,monospace;\
letter-spacing:.15em;text-transform:uppercase;width:11ch;padding:.3rem}\
fieldset{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0}\
label{display:block;padding:.25rem 0}.groups{color:#656d76}\
button{font-size:1rem;padding:.4rem 1.2rem;margin-right:.5rem;border-radius:6px;\
border:1px solid #d0d7de;cursor:pointer}button.approve{background:#1f883d;color:#fff}\
.ok{color:#1a7f37}.err{color:#cf222e}";

/// The policy every page carries: nothing loads, no script runs, forms post
/// only back here.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'";

/// A complete page with the security headers every page carries.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    page_with_csp(status, title, body, CSP.to_owned())
}

/// [`page`] with its own Content-Security-Policy.
fn page_with_csp(status: StatusCode, title: &str, body: &str, csp: String) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body>{body}\
<p class=\"note\">hoop development identity provider: for development only. \
Anyone who can reach this page can sign in as any listed user.</p></body></html>",
        title = esc(title),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, csp.as_str()),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

/// The "Sign in as" choice of users: one radio button each, the first checked.
fn user_picker(users: &[DevUser]) -> String {
    let mut choices = String::new();
    for (i, u) in users.iter().enumerate() {
        let groups = if u.groups.is_empty() {
            "no groups".to_owned()
        } else {
            u.groups.join(", ")
        };
        choices.push_str(&format!(
            "<label><input type=\"radio\" name=\"username\" value=\"{name}\"{checked}> \
<strong>{name}</strong> <span class=\"groups\">({groups})</span></label>",
            name = esc(&u.name),
            groups = esc(&groups),
            checked = if i == 0 { " checked" } else { "" },
        ));
    }
    if users.is_empty() {
        choices.push_str(
            "<p class=\"err\">No users are configured: add some under \
[identity.builtin] in the broker's config.</p>",
        );
    }
    format!("<fieldset><legend>Sign in as</legend>{choices}</fieldset>")
}

/// The form: user code, a choice of user, Approve and Deny.
pub fn device_form(user_code: &str, users: &[DevUser]) -> Response {
    let choices = user_picker(users);
    let body = format!(
        "<h1>Sign in to hoop</h1>\
<p>Check that this code matches the one shown in your terminal, choose who to sign in as, \
and approve.</p>\
<form method=\"post\" action=\"device\">\
<p><label for=\"user_code\">Code</label>\
<input type=\"text\" id=\"user_code\" name=\"user_code\" value=\"{code}\" \
autocomplete=\"off\" required maxlength=\"16\" placeholder=\"XXXX-XXXX\"></p>\
{choices}\
<button class=\"approve\" type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\
<button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\
</form>",
        code = esc(user_code),
    );
    page(StatusCode::OK, "Sign in to hoop", &body)
}

/// The result after a successful approval or denial.
pub fn done(approved_as: Option<&str>) -> Response {
    match approved_as {
        Some(user) => page(
            StatusCode::OK,
            "Signed in",
            &format!(
                "<h1 class=\"ok\">Signed in as {}</h1>\
<p>You can close this window and return to your terminal.</p>",
                esc(user)
            ),
        ),
        None => page(
            StatusCode::OK,
            "Sign-in denied",
            "<h1>Sign-in denied</h1><p>The terminal that asked will be told. \
You can close this window.</p>",
        ),
    }
}

/// A 400 page explaining what was wrong, with a way back to the form.
pub fn problem(message: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Cannot sign in",
        &format!(
            "<h1 class=\"err\">Cannot sign in</h1><p>{}</p>\
<p><a href=\"device\">Enter a code again</a></p>",
            esc(message)
        ),
    )
}

/// The authorization page (`/authorize`): the same choice of users, for an
/// application (`client`) that will receive the sign-in at `return_origin`.
/// The form posts here; the answer redirects to `return_origin`, so the
/// policy lets the form navigation end there.
pub fn authorize_form(
    request: &str,
    client: &str,
    return_origin: &str,
    users: &[DevUser],
) -> Response {
    let choices = user_picker(users);
    let body = format!(
        "<h1>Sign in to hoop</h1>\
<p><strong>{client}</strong> asks you to sign in; you will be sent back to \
<strong>{origin}</strong>.</p>\
<form method=\"post\" action=\"authorize\">\
<input type=\"hidden\" name=\"request\" value=\"{request}\">\
{choices}\
<button class=\"approve\" type=\"submit\" name=\"action\" value=\"approve\">Sign in</button>\
<button type=\"submit\" name=\"action\" value=\"deny\">Cancel</button>\
</form>",
        client = esc(client),
        origin = esc(return_origin),
        request = esc(request),
    );
    // CSP source expressions cannot carry quotes or spaces; an origin from a
    // parsed URL has neither, but be strict anyway.
    let extra = if return_origin
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ":/.-[]".contains(c))
    {
        format!(" {return_origin}")
    } else {
        String::new()
    };
    page_with_csp(
        StatusCode::OK,
        "Sign in to hoop",
        &body,
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'{extra}; \
             frame-ancestors 'none'"
        ),
    )
}

/// A 400 page for an authorization request that cannot be sent back to the
/// application (unknown client or return address), per RFC 6749 §4.1.2.1.
pub fn authorize_problem(message: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Cannot sign in",
        &format!(
            "<h1 class=\"err\">Cannot sign in</h1><p>{}</p>\
<p>Go back to the application and start the sign-in again.</p>",
            esc(message)
        ),
    )
}
