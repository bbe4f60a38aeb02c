//! The source site's pages: server-rendered HTML checked at compile time (maud), no
//! JavaScript, nothing from another origin. Every sentence a source reads is in
//! [`text`], so translation can follow.

use maud::{html, Markup, DOCTYPE};

use crate::submission::{FIELD_CSRF, FIELD_FILES, FIELD_MESSAGE};

/// The words of the source site, in one place.
pub mod text {
    pub const SITE: &str = "Secure drop";
    pub const LANDING_TITLE: &str = "Send us documents, safely";
    pub const LANDING_INTRO: &str = "This is a secure drop. You can send us documents and a message without an account and without telling us who you are.";
    pub const SAFETY_TITLE: &str = "Stay safe";
    pub const SAFETY: [&str; 4] = [
        "Use Tor Browser with its security level set to Safest.",
        "Use a device and a network that are not your employer's.",
        "Your files are encrypted on arrival; only the newsroom can read them, on a computer that is never online.",
        "After your first submission you get a code. It is the only way back to your conversation with us: nobody can recover it.",
    ];
    pub const START: &str = "Send documents or a message";
    pub const SUBMIT_TITLE: &str = "Send documents or a message";
    pub const MESSAGE_LABEL: &str = "Message";
    pub const FILES_LABEL: &str = "Files";
    pub const SEND: &str = "Send";
    pub const CODE_TITLE: &str = "Thank you. Keep this code.";
    pub const CODE_ADVICE: [&str; 3] = [
        "Write this code down on paper and keep it somewhere safe, away from your devices.",
        "With it you can come back later to read our replies and send more.",
        "It is shown only this once. Nobody, not even we, can recover it.",
    ];
    pub const BACK: &str = "Back to the start";
    pub const NOTHING_KEPT: &str = "Nothing from this attempt was kept.";
}

const STYLESHEET: &str = "/static/style.css";

/// The one stylesheet, served from the binary.
pub const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0 auto;max-width:42rem;padding:1rem;font:1.05rem/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff}\
h1{font-size:1.6rem;line-height:1.2}\
label{display:block;font-weight:600;margin-top:1rem}\
textarea,input[type=file]{display:block;width:100%;margin-top:.3rem;font:inherit}\
textarea{min-height:10rem;padding:.5rem;border:1px solid #555}\
button,.button{display:inline-block;margin-top:1rem;padding:.6rem 1.2rem;font:inherit;color:#fff;background:#14532d;border:0;text-decoration:none}\
#code{font:1.4rem/1.6 ui-monospace,monospace;padding:1rem;border:2px solid #14532d;word-spacing:.3rem}\
.error{border-left:4px solid #991b1b;padding-left:1rem}\
";

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " — " (text::SITE) }
                link rel="stylesheet" href=(STYLESHEET);
            }
            body {
                main { (body) }
            }
        }
    }
}

/// `GET /`.
pub fn landing() -> Markup {
    layout(
        text::LANDING_TITLE,
        html! {
            h1 { (text::LANDING_TITLE) }
            p { (text::LANDING_INTRO) }
            h2 { (text::SAFETY_TITLE) }
            ul { @for line in text::SAFETY { li { (line) } } }
            p { a.button href="/submit" { (text::START) } }
        },
    )
}

/// `GET /submit`: the form, csrf first so the server checks it before any file.
pub fn submit_form(csrf: &str, max_mib: u64, max_files: usize, max_chars: usize) -> Markup {
    layout(
        text::SUBMIT_TITLE,
        html! {
            h1 { (text::SUBMIT_TITLE) }
            form method="post" action="/submit" enctype="multipart/form-data" {
                input type="hidden" name=(FIELD_CSRF) value=(csrf);
                label for="message" { (text::MESSAGE_LABEL) }
                textarea id="message" name=(FIELD_MESSAGE) maxlength=(max_chars) {}
                label for="files" { (text::FILES_LABEL) }
                input id="files" type="file" name=(FIELD_FILES) multiple;
                p { "Up to " (max_files) " files, " (max_mib) " MiB in all." }
                button type="submit" { (text::SEND) }
            }
        },
    )
}

/// The page after a first submission: the code, shown once.
pub fn code(code: &str) -> Markup {
    layout(
        text::CODE_TITLE,
        html! {
            h1 { (text::CODE_TITLE) }
            p id="code" { (code) }
            ul { @for line in text::CODE_ADVICE { li { (line) } } }
            p { a href="/" { (text::BACK) } }
        },
    )
}

/// An error page: fixed words, never anything the client sent.
pub fn error(title: &str, explanation: &str, nothing_kept: bool) -> Markup {
    layout(
        title,
        html! {
            h1 { (title) }
            div.error {
                p { (explanation) }
                @if nothing_kept { p { (text::NOTHING_KEPT) } }
            }
            p { a href="/" { (text::BACK) } }
        },
    )
}
