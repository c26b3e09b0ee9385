//! HTML of the approvers' pages: small, server-rendered, no script, every interpolated value escaped.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use hoop_shared::api::{AccessRequestView, RequestState};

use super::sessions::Flash;

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

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;\
padding:0 1rem;color:#1f2328;line-height:1.5}h1{font-size:1.5rem}h2{font-size:1.15rem;margin:0}\
header{display:flex;justify-content:space-between;align-items:center;border-bottom:1px solid #d0d7de}\
article{border:1px solid #d0d7de;border-radius:6px;padding:1rem;margin:1rem 0}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}\
form.decide{margin-top:.8rem}label{display:block;font-weight:600}\
textarea{width:100%;box-sizing:border-box;font:inherit;min-height:3rem}\
button{font-size:1rem;padding:.35rem 1.1rem;margin-top:.3rem;border-radius:6px;\
border:1px solid #d0d7de;cursor:pointer}button.approve{background:#1f883d;color:#fff}\
button.deny{background:#cf222e;color:#fff}form.inline{display:inline}\
.ok{color:#1a7f37;font-weight:600}.err{color:#cf222e;font-weight:600}.note{color:#656d76}";

/// A complete page with the security headers every page carries: nothing
/// loads, no script runs, forms post only here, no framing, no caching.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title} · hoop</title><style>{STYLE}</style></head><body>{body}</body></html>",
        title = esc(title),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

/// A page that explains a problem and offers a way on (`link`, `link_text`).
pub fn problem(
    status: StatusCode,
    heading: &str,
    message: &str,
    link: &str,
    link_text: &str,
) -> Response {
    page(
        status,
        heading,
        &format!(
            "<main><h1 class=\"err\">{}</h1><p role=\"alert\">{}</p><p><a href=\"{}\">{}</a></p></main>",
            esc(heading),
            esc(message),
            esc(link),
            esc(link_text)
        ),
    )
}

/// "3 min ago" for a span of seconds.
pub fn ago(secs: u64) -> String {
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h {} min ago", secs / 3600, secs % 3600 / 60),
        _ => format!("{} days ago", secs / 86_400),
    }
}

fn duration(secs: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

fn approved_count(r: &AccessRequestView) -> usize {
    r.approvals
        .iter()
        .filter(|a| a.decision == crate::store::Decision::Approve.as_str())
        .count()
}

/// What the list page shows.
pub struct ListPage<'a> {
    /// Who is signed in.
    pub user: &'a str,
    /// Their groups.
    pub groups: &'a [String],
    /// Base path of the pages (`{prefix}/approvals`).
    pub base: &'a str,
    /// Ties each form to the session.
    pub csrf: &'a str,
    /// The result of the last action.
    pub flash: Option<Flash>,
    /// Requests waiting for this person's decision.
    pub decidable: &'a [AccessRequestView],
    /// This person's own pending requests (never decidable by them).
    pub own: &'a [AccessRequestView],
    /// Unix seconds.
    pub now: u64,
}

/// The approvers' page.
pub fn list(p: &ListPage<'_>) -> Response {
    let base = esc(p.base);
    let csrf = esc(p.csrf);
    let groups = if p.groups.is_empty() {
        "no groups".to_owned()
    } else {
        p.groups.join(", ")
    };
    let mut body = format!(
        "<header><p>Signed in as <strong id=\"signed-in-as\">{user}</strong> \
<span class=\"note\">({groups})</span></p>\
<form class=\"inline\" method=\"post\" action=\"{base}/signout\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\" id=\"sign-out\">Sign out</button></form></header><main>\
<h1>Access requests waiting for you</h1>",
        user = esc(p.user),
        groups = esc(&groups),
    );
    match &p.flash {
        Some(f) if f.ok => body.push_str(&format!(
            "<p id=\"flash\" role=\"status\" class=\"ok\">{}</p>",
            esc(&f.text)
        )),
        Some(f) => body.push_str(&format!(
            "<p id=\"flash\" role=\"alert\" class=\"err\">{}</p>",
            esc(&f.text)
        )),
        None => {}
    }
    if p.decidable.is_empty() {
        body.push_str("<p id=\"nothing-pending\">Nothing is waiting for your decision.</p>");
    }
    for r in p.decidable {
        let id = esc(&r.id);
        body.push_str(&format!(
            "<article id=\"request-{id}\" aria-labelledby=\"title-{id}\">\
<h2 id=\"title-{id}\">{who} asks for {conn}</h2><dl>\
<dt>Requester</dt><dd>{who}</dd><dt>Connection</dt><dd>{conn}</dd>\
<dt>Reason</dt><dd class=\"reason\">{reason}</dd><dt>Duration</dt><dd>{dur}</dd>\
<dt>Asked</dt><dd>{age}</dd><dt>Approvals</dt><dd>{got} of {need} \
<span class=\"note\">(from {approvers})</span></dd><dt>Request</dt><dd class=\"note\">{id}</dd></dl>\
<form class=\"decide\" id=\"approve-{id}\" method=\"post\" action=\"{base}/{id}/approve\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label for=\"approve-comment-{id}\">Comment (optional)</label>\
<textarea id=\"approve-comment-{id}\" name=\"comment\" maxlength=\"1000\"></textarea>\
<button class=\"approve\" type=\"submit\">Approve</button></form>\
<form class=\"decide\" id=\"deny-{id}\" method=\"post\" action=\"{base}/{id}/deny\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label for=\"deny-reason-{id}\">Reason for denying (required; the requester reads it)</label>\
<textarea id=\"deny-reason-{id}\" name=\"comment\" maxlength=\"1000\" required></textarea>\
<button class=\"deny\" type=\"submit\">Deny</button></form></article>",
            who = esc(&r.requester),
            conn = esc(&r.connection),
            reason = esc(r.reason.as_deref().unwrap_or("(none given)")),
            dur = esc(&duration(r.duration_secs)),
            age = esc(&ago(p.now.saturating_sub(r.created_at))),
            got = approved_count(r),
            need = r.approvals_needed,
            approvers = esc(&r.approvers.describe()),
        ));
    }
    let own: Vec<_> = p
        .own
        .iter()
        .filter(|r| r.state == RequestState::Pending)
        .collect();
    if !own.is_empty() {
        body.push_str(
            "<h2>Your own requests</h2><p class=\"note\">Nobody may approve their own \
request; these wait for the approvers named.</p><ul id=\"own-requests\">",
        );
        for r in own {
            body.push_str(&format!(
                "<li id=\"own-{id}\">{conn}: <span class=\"reason\">{reason}</span> \
({got} of {need} approvals, from {approvers})</li>",
                id = esc(&r.id),
                conn = esc(&r.connection),
                reason = esc(r.reason.as_deref().unwrap_or("(no reason)")),
                got = approved_count(r),
                need = r.approvals_needed,
                approvers = esc(&r.approvers.describe()),
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str("</main>");
    page(StatusCode::OK, "Approvals", &body)
}

/// After signing out: a page, not a redirect to the provider (the form's
/// `form-action 'self'` would block a redirect off this origin).
pub fn signed_out(base: &str) -> Response {
    page(
        StatusCode::OK,
        "Signed out",
        &format!(
            "<main><h1>Signed out</h1><p role=\"status\">You are signed out of the approvals page.</p>\
<p><a id=\"sign-in\" href=\"{}\">Sign in again</a></p></main>",
            esc(base)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_interpolated_is_escaped() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(125), "2 min ago");
        assert_eq!(ago(3_900), "1 h 5 min ago");
        assert_eq!(ago(200_000), "2 days ago");
    }
}
