//! The source site's pages: server-rendered HTML checked at compile time (maud), no
//! JavaScript, nothing from another origin. Every sentence a source reads is in
//! [`text`], so translation can follow.

use maud::{html, Markup, DOCTYPE};

use super::session::Receipt;
use crate::config::Retention;
use crate::submission::{FIELD_CSRF, FIELD_DESK, FIELD_FILES, FIELD_MESSAGE};

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
    pub const GO_INBOX: &str = "Go to your inbox";
    pub const RETURNING: &str = "Sent something before? Log in with your code";
    pub const LOGIN_TITLE: &str = "Log in with your code";
    pub const CODE_LABEL: &str = "Your code (8 words)";
    pub const LOG_IN: &str = "Log in";
    pub const LOGIN_FAILED_TITLE: &str = "That did not work";
    pub const LOGIN_FAILED: &str =
        "That code did not open anything. Check the words and try again.";
    pub const INBOX_TITLE: &str = "Your inbox";
    pub const REPLIES_TITLE: &str = "Replies from the newsroom";
    pub const NO_REPLIES: &str = "No replies yet. Check back later.";
    pub const REPLY_UNREADABLE: &str = "This reply could not be opened.";
    pub const DELETE: &str = "Delete this reply";
    pub const FOLLOW_UP_TITLE: &str = "Send more";
    pub const LOG_OUT: &str = "Log out";
    pub const NEW_CODE_TITLE: &str = "Your new code";
    pub const NEW_CODE_ADVICE: &str = "Write this new code down now. Your old code keeps working until you confirm below; after that, only the new code opens your inbox.";
    pub const NEW_CODE_CONFIRM: &str = "I have written down my new code";
    pub const ONION_IS: &str = "This site's onion address is:";
    pub const NOT_ONION: &str = "You are not using this site's onion address. For your safety, open the onion address in Tor Browser.";
    pub const NOTHING_KEPT: &str = "Nothing from this attempt was kept.";
    pub const DESK_LEGEND: &str = "Who should receive it?";
    pub const DESK_ADVICE: &str = "Only the desk you choose can read what you send, now and later.";
    pub const YOUR_DESK: &str = "You are talking to:";
    pub const RETENTION_TITLE: &str = "How long this site keeps things";
    pub const RECEIVED: &str = "Received";
    pub const RECEIVED_AGAIN: &str = "It arrived safely; you do not need to send it again.";
    pub const CLOSED_TITLE: &str = "Conversation closed";
    pub const CLOSED: &str = "The newsroom has closed this conversation and deleted it from the server, with its replies. Your code no longer works. If you want to send something new, start a new submission: you will get a new code.";
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
a:focus,button:focus,.button:focus,textarea:focus,input:focus{outline:3px solid #b45309;outline-offset:2px}\
#code{font:1.4rem/1.6 ui-monospace,monospace;padding:1rem;border:2px solid #14532d;word-spacing:.3rem}\
.error{border-left:4px solid #991b1b;padding-left:1rem}\
.notice{margin:0 0 1rem;padding:.6rem;background:#fef3c7;border:1px solid #92400e}\
.reply{border:1px solid #555;padding:0 1rem;margin:1rem 0}\
.reply pre{white-space:pre-wrap;font:inherit}\
.day{color:#444;font-size:.9rem}\
fieldset{margin-top:1rem;border:1px solid #555}\
.desk label{display:inline;margin-left:.4rem}\
.desk p{margin:.1rem 0 .6rem 1.8rem}\
input[type=password]{display:block;width:100%;margin-top:.3rem;padding:.5rem;font:1.1rem ui-monospace,monospace}\
";

/// What every page needs to know about the request.
#[derive(Clone, Copy, Default)]
pub struct Context<'a> {
    /// Show the "not on the onion" notice.
    pub not_onion: bool,
    /// The site's onion address, named (as text, never a link) in that notice.
    pub onion: Option<&'a str>,
    /// What the server deletes by itself, told to sources in plain words.
    pub retention: Retention,
}

fn layout(ctx: Context<'_>, title: &str, body: Markup) -> Markup {
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
                @if ctx.not_onion {
                    div.notice role="alert" {
                        p { (text::NOT_ONION) }
                        @if let Some(onion) = ctx.onion {
                            p { (text::ONION_IS) " " strong { (onion) } }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// `GET /`.
pub fn landing(ctx: Context<'_>) -> Markup {
    layout(
        ctx,
        text::LANDING_TITLE,
        html! {
            h1 { (text::LANDING_TITLE) }
            p { (text::LANDING_INTRO) }
            h2 { (text::SAFETY_TITLE) }
            ul { @for line in text::SAFETY { li { (line) } } }
            @if !ctx.retention.is_off() {
                h2 { (text::RETENTION_TITLE) }
                ul #retention { @for line in retention_words(&ctx.retention) { li { (line) } } }
            }
            p { a.button href="/submit" { (text::START) } }
            p { a href="/login" { (text::RETURNING) } }
        },
    )
}

/// A byte count as people read it: "2 GB", "500 MB", "1.5 MB", "20 KB" (units of
/// 1024, as file managers show them, whole where exact, else one decimal).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if (value - value.round()).abs() < 0.05 {
        format!("{} {}", value.round() as u64, UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// 100000 as "100,000".
fn group_digits(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Limits shown beside the submit form.
#[derive(Clone, Copy)]
pub struct FormLimits {
    /// Total bytes.
    pub max_bytes: u64,
    /// Files.
    pub max_files: usize,
    /// Message characters.
    pub max_chars: usize,
}

/// A desk a first submission can go to.
pub struct DeskChoice<'a> {
    /// Its id (the radio button's value).
    pub id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// What the newsroom says about it.
    pub description: Option<&'a str>,
}

/// The submit form, csrf first so the server checks it before any file, then the desk
/// (only when there are several to choose from), whose keys the files are encrypted to.
fn submit_fields(csrf: &str, limits: FormLimits, desks: &[DeskChoice<'_>]) -> Markup {
    html! {
        form method="post" action="/submit" enctype="multipart/form-data" {
            input type="hidden" name=(FIELD_CSRF) value=(csrf);
            @if desks.len() > 1 {
                fieldset {
                    legend { (text::DESK_LEGEND) }
                    p { (text::DESK_ADVICE) }
                    @for desk in desks {
                        div.desk {
                            input type="radio" name=(FIELD_DESK) id={ "desk-" (desk.id) } value=(desk.id) required;
                            label for={ "desk-" (desk.id) } { (desk.name) }
                            @if let Some(description) = desk.description { p.day { (description) } }
                        }
                    }
                }
            }
            label for="message" { (text::MESSAGE_LABEL) }
            p.day #message-limit { "Up to " (group_digits(limits.max_chars)) " characters." }
            textarea id="message" name=(FIELD_MESSAGE) aria-describedby="message-limit" {}
            label for="files" { (text::FILES_LABEL) }
            input id="files" type="file" name=(FIELD_FILES) multiple;
            p { "Up to " (limits.max_files) " files, " (size(limits.max_bytes)) " in all." }
            button type="submit" { (text::SEND) }
        }
    }
}

/// `GET /submit`.
pub fn submit_form(
    ctx: Context<'_>,
    csrf: &str,
    limits: FormLimits,
    desks: &[DeskChoice<'_>],
) -> Markup {
    layout(
        ctx,
        text::SUBMIT_TITLE,
        html! {
            h1 { (text::SUBMIT_TITLE) }
            (submit_fields(csrf, limits, desks))
        },
    )
}

/// `GET /login`.
pub fn login(ctx: Context<'_>, csrf: &str) -> Markup {
    layout(
        ctx,
        text::LOGIN_TITLE,
        html! {
            h1 { (text::LOGIN_TITLE) }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="code" { (text::CODE_LABEL) }
                input id="code" type="password" name="code" autocomplete="off" spellcheck="false" autocapitalize="none" required;
                button type="submit" { (text::LOG_IN) }
            }
        },
    )
}

/// A reply as the inbox shows it: decrypted text, or `None` if it could not be opened.
pub struct ShownReply {
    /// Its id, for the delete button.
    pub id: String,
    /// The UTC day it arrived.
    pub day: String,
    /// The text.
    pub text: Option<String>,
}

/// `GET /inbox`.
pub fn inbox(
    ctx: Context<'_>,
    csrf: &str,
    replies: &[ShownReply],
    new_code: Option<&str>,
    limits: FormLimits,
    desk: Option<&str>,
    receipt: Option<&Receipt>,
) -> Markup {
    layout(
        ctx,
        text::INBOX_TITLE,
        html! {
            h1 { (text::INBOX_TITLE) }
            @if let Some(receipt) = receipt {
                p #receipt role="status" {
                    strong { (text::RECEIVED) " " (receipt.day) ": " (received(receipt)) "." }
                    " " (text::RECEIVED_AGAIN)
                }
            }
            @if let Some(desk) = desk { p #desk { (text::YOUR_DESK) " " strong { (desk) } } }
            @if let Some(code) = new_code {
                section {
                    h2 { (text::NEW_CODE_TITLE) }
                    p id="code" { (code) }
                    p { (text::NEW_CODE_ADVICE) }
                    form method="post" action="/code/confirm" {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { (text::NEW_CODE_CONFIRM) }
                    }
                }
            }
            h2 { (text::REPLIES_TITLE) }
            @if replies.is_empty() { p { (text::NO_REPLIES) } }
            @for reply in replies {
                article.reply {
                    p.day { (reply.day) }
                    @match &reply.text {
                        Some(text) => pre { (text) },
                        None => p { (text::REPLY_UNREADABLE) },
                    }
                    form method="post" action={ "/replies/" (reply.id) "/delete" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { (text::DELETE) }
                    }
                }
            }
            h2 { (text::FOLLOW_UP_TITLE) }
            (submit_fields(csrf, limits, &[]))
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { (text::LOG_OUT) }
            }
        },
    )
}

/// The retention rules in plain words, one sentence each.
fn retention_words(policy: &Retention) -> Vec<String> {
    let days = |n: u32| match n {
        1 => "1 day".to_owned(),
        n => format!("{n} days"),
    };
    let mut words = Vec::new();
    if let Some(n) = policy.items_after_days {
        words.push(format!(
            "What you send is deleted from this server {} after it arrives.",
            days(n)
        ));
    }
    if let Some(n) = policy.pulled_items_after_days {
        words.push(format!(
            "What you send is deleted from this server {} after the newsroom has downloaded it.",
            days(n)
        ));
    }
    if let Some(n) = policy.inactive_sources_after_days {
        words.push(format!(
            "If you do not log in for {}, your conversation is deleted, with the newsroom's replies, and your code stops working.",
            days(n)
        ));
    }
    words
}

/// "1 message and 2 files", as people say it.
fn received(receipt: &Receipt) -> String {
    let count = |n: usize, one: &str, many: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    match (receipt.messages, receipt.files) {
        (0, files) => count(files, "file", "files"),
        (messages, 0) => count(messages, "message", "messages"),
        (messages, files) => format!(
            "{} and {}",
            count(messages, "message", "messages"),
            count(files, "file", "files")
        ),
    }
}

/// The page after a first submission: the code, shown once.
pub fn code(ctx: Context<'_>, code: &str) -> Markup {
    layout(
        ctx,
        text::CODE_TITLE,
        html! {
            h1 { (text::CODE_TITLE) }
            p id="code" { (code) }
            ul { @for line in text::CODE_ADVICE { li { (line) } } }
            p { a href="/inbox" { (text::GO_INBOX) } }
        },
    )
}

/// An error page: fixed words, never anything the client sent.
pub fn error(ctx: Context<'_>, title: &str, explanation: &str, nothing_kept: bool) -> Markup {
    layout(
        ctx,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_read_as_people_read_them() {
        assert_eq!(size(2 * 1024 * 1024 * 1024), "2 GB");
        assert_eq!(size(500 * 1024 * 1024), "500 MB");
        assert_eq!(size(1536 * 1024), "1.5 MB");
        assert_eq!(size(20 * 1024), "20 KB");
        assert_eq!(size(999), "999 bytes");
        assert_eq!(group_digits(100_000), "100,000");
        assert_eq!(group_digits(999), "999");
        let receipt = |messages, files| Receipt {
            messages,
            files,
            day: "2026-11-29".into(),
        };
        assert_eq!(received(&receipt(1, 2)), "1 message and 2 files");
        assert_eq!(received(&receipt(0, 1)), "1 file");
        assert_eq!(received(&receipt(1, 0)), "1 message");
    }
}
