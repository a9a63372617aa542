//! The HTML pages of the sign-in: the sign-in form, the consent page, the error page shown when
//! the app cannot be trusted with the error, the device-code page and the form_post page.
//! Every value reflected into a page goes through `esc`.
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// HTML-escapes text for element content and double-quoted attributes.
pub fn esc(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<style>body{{font-family:sans-serif;max-width:28em;margin:3em auto;padding:0 1em}}\
input[type=text],input[type=password],input[type=email]{{width:100%;padding:.4em;margin:.2em 0 .8em}}\
button{{padding:.4em 1.2em;margin-right:.5em}}.err{{color:#a4262c}}code{{word-break:break-all}}</style>\
</head><body><p><b>entra-emulator</b></p>{body}</body></html>",
        esc(title)
    );
    let mut r = Html(html).into_response();
    let h = r.headers_mut();
    h.insert(
        "Cache-Control",
        HeaderValue::from_static("no-store, no-cache"),
    );
    h.insert("Pragma", HeaderValue::from_static("no-cache"));
    // Pages run no script of their own except the form_post auto-submit.
    h.insert(
        "Content-Security-Policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action *; script-src 'unsafe-inline'"),
    );
    h.insert("X-Frame-Options", HeaderValue::from_static("DENY"));
    r
}

/// The sign-in form. `message` is an error from a previous attempt.
pub fn sign_in(
    action: &str,
    req: &str,
    app_name: &str,
    login_hint: &str,
    message: Option<&str>,
) -> Response {
    let msg = message
        .map(|m| format!("<p class=\"err\" id=\"error\">{}</p>", esc(m)))
        .unwrap_or_default();
    page(
        "Sign in to your account",
        &format!(
            "<h1>Sign in</h1><p>to continue to <b id=\"app\">{}</b></p>{msg}\
<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"req\" value=\"{}\">\
<label for=\"login\">Email, phone, or Skype</label><input type=\"email\" id=\"login\" name=\"login\" value=\"{}\" autocomplete=\"username\" required>\
<label for=\"passwd\">Password</label><input type=\"password\" id=\"passwd\" name=\"passwd\" autocomplete=\"current-password\" required>\
<button type=\"submit\" id=\"signin\">Sign in</button></form>",
            esc(app_name),
            esc(action),
            esc(req),
            esc(login_hint)
        ),
    )
}

/// One permission on the consent page.
pub struct Permission {
    pub resource: String,
    pub value: String,
    pub description: String,
}

/// The consent page: the permissions asked for, Accept and Cancel; an admin may consent for everyone.
pub fn consent(
    action: &str,
    req: &str,
    app_name: &str,
    user: &str,
    perms: &[Permission],
    admin: bool,
) -> Response {
    let items: String = perms
        .iter()
        .map(|p| {
            format!(
                "<li><b>{}</b> ({}): {}</li>",
                esc(&p.value),
                esc(&p.resource),
                esc(&p.description)
            )
        })
        .collect();
    let org = if admin {
        "<p><label><input type=\"checkbox\" name=\"org\" value=\"true\" id=\"org\"> Consent on behalf of your organization</label></p>"
    } else {
        ""
    };
    page(
        "Permissions requested",
        &format!(
            "<h1>Permissions requested</h1><p><b id=\"app\">{}</b> wants to, for <span id=\"user\">{}</span>:</p><ul id=\"permissions\">{items}</ul>\
<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"req\" value=\"{}\">{org}\
<button type=\"submit\" name=\"accept\" value=\"true\" id=\"accept\">Accept</button>\
<button type=\"submit\" name=\"accept\" value=\"false\" id=\"cancel\">Cancel</button></form>",
            esc(app_name),
            esc(user),
            esc(action),
            esc(req)
        ),
    )
}

/// Entra's own error page ("Sorry, but we're having trouble signing you in"), for errors that must
/// not reach an untrusted redirect URI (interactive-flows.md 1.4). Its status is not known for
/// certain; 200 with HTML is what users' reports show, so 200 it is.
pub fn error(code: u32, text: &str, request_id: &str, correlation_id: &str) -> Response {
    let mut r = page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1><p>Sorry, but we're having trouble signing you in.</p>\
<p class=\"err\" id=\"error\">AADSTS{code}: {}</p><p>Request Id: <code>{}</code><br>Correlation Id: <code>{}</code></p>",
            esc(text),
            esc(request_id),
            esc(correlation_id)
        ),
    );
    *r.status_mut() = StatusCode::OK;
    r
}

/// response_mode=form_post: a page that posts the parameters to the redirect URI.
pub fn form_post(redirect_uri: &str, params: &[(String, String)]) -> Response {
    let fields: String = params
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect();
    page(
        "Working...",
        &format!(
            "<form method=\"POST\" name=\"hiddenform\" action=\"{}\">{fields}<noscript><p>Script is disabled. Click Submit to continue.</p><input type=\"submit\" value=\"Submit\"></noscript></form>\
<script>document.forms[0].submit()</script>",
            esc(redirect_uri)
        ),
    )
}

/// The device-code page: enter the code shown by the device.
pub fn device_code(action: &str, message: Option<&str>) -> Response {
    let msg = message
        .map(|m| format!("<p class=\"err\" id=\"error\">{}</p>", esc(m)))
        .unwrap_or_default();
    page(
        "Enter code",
        &format!(
            "<h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>{msg}\
<form method=\"post\" action=\"{}\"><input type=\"text\" id=\"otc\" name=\"otc\" autocomplete=\"off\" required>\
<button type=\"submit\" id=\"next\">Next</button></form>",
            esc(action)
        ),
    )
}

/// Shown at the end of a device-code sign-in.
pub fn device_done(app_name: &str) -> Response {
    page(
        "Signed in",
        &format!(
            "<h1 id=\"done\">You have signed in</h1><p>You have signed in to the <b>{}</b> application on your device. You may now close this window.</p>",
            esc(app_name)
        ),
    )
}

/// After `logout` without a (registered) post-logout redirect URI.
pub fn signed_out() -> Response {
    page(
        "Signed out",
        "<h1 id=\"signedout\">You signed out of your account</h1><p>It's a good idea to close all browser windows.</p>",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            super::esc("<script>\"x\"&'y'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;"
        );
    }
}
