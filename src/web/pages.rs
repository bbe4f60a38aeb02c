//! The source site's pages: server-rendered HTML checked at compile time (maud), no
//! JavaScript, nothing from another origin. Every sentence a source reads is a message
//! of the request's [`Language`]; the newsroom's own words come from its [`Face`].

use maud::{html, Markup, DOCTYPE};

use super::language::{Arg, Language};
use super::session::Receipt;
use crate::config::Retention;
use crate::face::{Chosen, Face};
use crate::submission::{FIELD_CSRF, FIELD_DESK, FIELD_FILES, FIELD_MESSAGE};

const STYLESHEET: &str = "/static/style.css";

/// The one stylesheet, served from the binary. Logical properties (`inline-start`)
/// so right-to-left pages mirror by themselves.
pub const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0 auto;max-width:42rem;padding:1rem;font:1.05rem/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff;overflow-wrap:break-word}\
h1{font-size:1.6rem;line-height:1.2}\
label{display:block;font-weight:600;margin-top:1rem}\
textarea,input[type=file]{display:block;width:100%;margin-top:.3rem;font:inherit}\
textarea{min-height:10rem;padding:.5rem;border:1px solid #555}\
button,.button{display:inline-block;margin-top:1rem;padding:.6rem 1.2rem;font:inherit;color:#fff;background:#14532d;border:0;text-decoration:none}\
:focus-visible{outline:3px solid #b45309;outline-offset:2px}\
#code{font:1.4rem/1.6 ui-monospace,monospace;padding:1rem;border:2px solid #14532d;word-spacing:.3rem;overflow-wrap:anywhere}\
.error{border-inline-start:4px solid #991b1b;padding-inline-start:1rem}\
.field-error{color:#991b1b;margin:.3rem 0}\
[aria-invalid=true]{border:2px solid #991b1b}\
.notice{margin:0 0 1rem;padding:.6rem;background:#fef3c7;border:1px solid #92400e;overflow-wrap:anywhere}\
.reply{border:1px solid #555;padding:0 1rem;margin:1rem 0}\
.reply pre{white-space:pre-wrap;font:inherit}\
.day{color:#444;font-size:.9rem}\
fieldset{margin-top:1rem;border:1px solid #555}\
.desk label{display:inline;margin-inline-start:.4rem}\
.desk p{margin:.1rem 0 .6rem;margin-inline-start:1.8rem}\
input[type=password]{display:block;width:100%;margin-top:.3rem;padding:.5rem;font:1.1rem ui-monospace,monospace}\
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;border-bottom:1px solid #ccc;padding-bottom:.5rem}\
header img{max-height:4rem;max-width:100%;height:auto}\
header .name{font-weight:700;margin:0}\
nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.2rem .9rem;margin:.3rem 0;padding:0;font-size:.95rem}\
footer{margin-top:2rem;border-top:1px solid #ccc;color:#444}\
";

/// What every page needs to know about the request.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Show the "not on the onion" notice.
    pub not_onion: bool,
    /// The site's onion address, named (as text, never a link) in that notice.
    pub onion: Option<&'a str>,
    /// What the server deletes by itself, told to sources in plain words.
    pub retention: Retention,
    /// The language the page is written in.
    pub lang: &'static Language,
    /// The languages the site offers, for the list of links on every page.
    pub offered: &'a [&'static Language],
    /// The newsroom's name, logo and words.
    pub face: &'a Face,
}

impl Context<'_> {
    fn t(&self, id: &str) -> String {
        self.lang.text(id)
    }

    fn t_with(&self, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        self.lang.text_with(id, args)
    }

    /// The newsroom's name, or the site's default one.
    fn site_name(&self) -> String {
        self.face.name.clone().unwrap_or_else(|| self.t("site"))
    }
}

/// Whether a page lists the languages: not the page that shows a new code once, whose
/// links would leave it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Links {
    Languages,
    None,
}

fn layout(ctx: Context<'_>, title: &str, links: Links, body: Markup) -> Markup {
    let lang = ctx.lang;
    html! {
        (DOCTYPE)
        html lang=(lang.html_lang) dir=(lang.dir()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " — " (ctx.site_name()) }
                link rel="stylesheet" href=(STYLESHEET);
            }
            body {
                header {
                    @if let Some(logo) = &ctx.face.logo {
                        img src=(logo.kind.path()) alt=(ctx.site_name());
                    }
                    @if ctx.face.logo.is_none() || ctx.face.name.is_some() {
                        p.name { (ctx.site_name()) }
                    }
                }
                @if links == Links::Languages && ctx.offered.len() > 1 {
                    nav aria-label=(ctx.t("languages")) {
                        ul {
                            @for other in ctx.offered {
                                li {
                                    @if other.tag == lang.tag {
                                        span lang=(other.html_lang) aria-current="true" { strong { (other.name) } }
                                    } @else {
                                        a href={ "?l=" (other.tag) } lang=(other.html_lang) hreflang=(other.html_lang) { (other.name) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if ctx.not_onion {
                    div.notice role="alert" {
                        p { (ctx.t("not-onion")) }
                        @if let Some(onion) = ctx.onion {
                            p { (ctx.t("onion-is")) " " strong lang="en" dir="ltr" { (onion) } }
                        }
                    }
                }
                main { (body) }
                @if let Some(contact) = ctx.face.contact(lang) {
                    footer { p { (ctx.t("contact")) " " (in_language(&contact, html! { (contact.text) })) } }
                }
            }
        }
    }
}

/// The newsroom's text as paragraphs (split at blank lines), marked with its language
/// when it is not the page's.
fn paragraphs(chosen: &Chosen<'_>) -> Markup {
    html! {
        @for paragraph in chosen.text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
            @match chosen.other_language {
                Some(other) => p lang=(other.html_lang) dir=(other.dir()) { (paragraph) },
                None => p { (paragraph) },
            }
        }
    }
}

fn in_language(chosen: &Chosen<'_>, inner: Markup) -> Markup {
    html! {
        @match chosen.other_language {
            Some(other) => span lang=(other.html_lang) dir=(other.dir()) { (inner) },
            None => (inner),
        }
    }
}

/// `GET /`.
pub fn landing(ctx: Context<'_>) -> Markup {
    let title = ctx.t("landing-title");
    html! {
        (layout(ctx, &title, Links::Languages, html! {
            h1 { (title) }
            @match ctx.face.intro(ctx.lang) {
                Some(intro) => (paragraphs(&intro)),
                None => p { (ctx.t("landing-intro")) },
            }
            @if let Some(instructions) = ctx.face.instructions(ctx.lang) {
                h2 { (ctx.t("instructions-title")) }
                (paragraphs(&instructions))
            }
            h2 { (ctx.t("safety-title")) }
            ul {
                @for id in ["safety-tor", "safety-device", "safety-encrypted", "safety-code"] {
                    li { (ctx.t(id)) }
                }
            }
            @if !ctx.retention.is_off() {
                h2 { (ctx.t("retention-title")) }
                ul #retention { @for line in retention_words(ctx) { li { (line) } } }
            }
            p { a.button href="/submit" { (ctx.t("start")) } }
            p { a href="/login" { (ctx.t("returning")) } }
        }))
    }
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

/// The form field a refusal is about.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The message.
    Message,
    /// The files.
    Files,
    /// The choice of desk.
    Desk,
}

impl Field {
    fn error_id(self) -> &'static str {
        match self {
            Field::Message => "message-error",
            Field::Files => "files-error",
            Field::Desk => "desk-error",
        }
    }
}

/// What was wrong with a field, told beside it.
pub struct FieldError {
    /// The field.
    pub field: Field,
    /// What is wrong, in the page's language.
    pub text: String,
}

/// The submit form, csrf first so the server checks it before any file, then the desk
/// (only when there are several to choose from), whose keys the files are encrypted to.
/// A refused field gets its error beside it, tied to it for screen readers.
fn submit_fields(
    ctx: Context<'_>,
    csrf: &str,
    limits: FormLimits,
    desks: &[DeskChoice<'_>],
    error: Option<&FieldError>,
) -> Markup {
    let error_on = |field: Field| error.filter(|e| e.field == field);
    let invalid = |field: Field| error_on(field).map(|_| "true");
    let described = |field: Field, hint: &str| match error_on(field) {
        Some(_) => format!("{} {hint}", field.error_id()),
        None => hint.to_owned(),
    };
    let field_error = |field: Field| {
        html! {
            @if let Some(error) = error_on(field) {
                p.field-error id=(field.error_id()) { strong { (ctx.t("error-label")) } " " (error.text) }
            }
        }
    };
    html! {
        form method="post" action="/submit" enctype="multipart/form-data" {
            input type="hidden" name=(FIELD_CSRF) value=(csrf);
            @if desks.len() > 1 {
                fieldset {
                    legend { (ctx.t("desk-legend")) }
                    p #desk-advice { (ctx.t("desk-advice")) }
                    (field_error(Field::Desk))
                    @for desk in desks {
                        div.desk {
                            input type="radio" name=(FIELD_DESK) id={ "desk-" (desk.id) } value=(desk.id) required
                                aria-invalid=[invalid(Field::Desk)] aria-describedby=(described(Field::Desk, "desk-advice"));
                            label for={ "desk-" (desk.id) } { (desk.name) }
                            @if let Some(description) = desk.description { p.day { (description) } }
                        }
                    }
                }
            }
            label for="message" { (ctx.t("message-label")) }
            p.day #message-limit { (ctx.t_with("message-limit", &[("chars", Arg::Text(&ctx.lang.number(limits.max_chars as u64)))])) }
            (field_error(Field::Message))
            textarea id="message" name=(FIELD_MESSAGE) aria-invalid=[invalid(Field::Message)]
                aria-describedby=(described(Field::Message, "message-limit")) {}
            label for="files" { (ctx.t("files-label")) }
            p.day #files-limit {
                (ctx.t_with("files-limit", &[
                    ("count", Arg::Count(limits.max_files as u64)),
                    ("size", Arg::Text(&ctx.lang.size(limits.max_bytes))),
                ]))
            }
            (field_error(Field::Files))
            input id="files" type="file" name=(FIELD_FILES) multiple aria-invalid=[invalid(Field::Files)]
                aria-describedby=(described(Field::Files, "files-limit"));
            button type="submit" { (ctx.t("send")) }
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
    let title = ctx.t("submit-title");
    layout(
        ctx,
        &title,
        Links::Languages,
        html! {
            h1 { (title) }
            (submit_fields(ctx, csrf, limits, desks, None))
        },
    )
}

/// A submission refused for one of its fields: what went wrong, and the form again
/// with the error beside the field. Nothing of the refused attempt is in it.
pub fn refused_submission(
    ctx: Context<'_>,
    title: &str,
    error: &FieldError,
    csrf: &str,
    limits: FormLimits,
    desks: &[DeskChoice<'_>],
) -> Markup {
    layout(
        ctx,
        title,
        Links::Languages,
        html! {
            h1 { (title) }
            div.error {
                p { (error.text) }
                p { (ctx.t("nothing-kept")) }
            }
            (submit_fields(ctx, csrf, limits, desks, Some(error)))
        },
    )
}

/// `GET /login`, and the same form after a code that opened nothing (`failed`), with
/// the error tied to the code field.
pub fn login(ctx: Context<'_>, csrf: &str, failed: bool) -> Markup {
    let title = if failed {
        ctx.t("login-failed-title")
    } else {
        ctx.t("login-title")
    };
    let described = if failed {
        "code-error code-hint"
    } else {
        "code-hint"
    };
    layout(
        ctx,
        &title,
        Links::Languages,
        html! {
            h1 { (title) }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="code" { (ctx.t("code-label")) }
                p.day #code-hint { (ctx.t("code-hint")) }
                @if failed {
                    p.field-error #code-error { strong { (ctx.t("error-label")) } " " (ctx.t("login-failed")) }
                }
                input id="code" type="password" name="code" autocomplete="off" spellcheck="false"
                    autocapitalize="none" required lang="en" dir="ltr"
                    aria-invalid=[failed.then_some("true")] aria-describedby=(described);
                button type="submit" { (ctx.t("log-in")) }
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
    let title = ctx.t("inbox-title");
    layout(
        ctx,
        &title,
        Links::Languages,
        html! {
            h1 { (title) }
            @if let Some(receipt) = receipt {
                p #receipt role="status" {
                    strong { (ctx.t_with("received", &[("day", Arg::Text(&receipt.day)), ("what", Arg::Text(&received(ctx, receipt)))])) }
                    " " (ctx.t("received-again"))
                }
            }
            @if let Some(desk) = desk { p #desk { (ctx.t("your-desk")) " " strong { (desk) } } }
            @if let Some(code) = new_code {
                section {
                    h2 { (ctx.t("new-code-title")) }
                    p id="code" lang="en" dir="ltr" { (code) }
                    p { (ctx.t("new-code-advice")) " " (ctx.t("code-english")) }
                    form method="post" action="/code/confirm" {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { (ctx.t("new-code-confirm")) }
                    }
                }
            }
            h2 { (ctx.t("replies-title")) }
            @if replies.is_empty() { p { (ctx.t("no-replies")) } }
            @for reply in replies {
                article.reply {
                    p.day { (reply.day) }
                    @match &reply.text {
                        // The newsroom's text: its language is not the page's to guess.
                        Some(text) => pre dir="auto" { (text) },
                        None => p { (ctx.t("reply-unreadable")) },
                    }
                    form method="post" action={ "/replies/" (reply.id) "/delete" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { (ctx.t("delete-reply")) }
                    }
                }
            }
            h2 { (ctx.t("follow-up-title")) }
            (submit_fields(ctx, csrf, limits, &[], None))
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { (ctx.t("log-out")) }
            }
        },
    )
}

/// The retention rules in plain words, one sentence each.
fn retention_words(ctx: Context<'_>) -> Vec<String> {
    let policy = ctx.retention;
    [
        ("retention-items", policy.items_after_days),
        ("retention-pulled", policy.pulled_items_after_days),
        ("retention-inactive", policy.inactive_sources_after_days),
    ]
    .into_iter()
    .filter_map(|(id, days)| days.map(|n| ctx.t_with(id, &[("days", Arg::Count(n.into()))])))
    .collect()
}

/// "1 message and 2 files", as people say it.
fn received(ctx: Context<'_>, receipt: &Receipt) -> String {
    let count = |id: &str, n: usize| ctx.t_with(id, &[("n", Arg::Count(n as u64))]);
    match (receipt.messages, receipt.files) {
        (0, files) => count("received-files", files),
        (messages, 0) => count("received-messages", messages),
        (messages, files) => ctx.t_with(
            "received-both",
            &[
                ("messages", Arg::Text(&count("received-messages", messages))),
                ("files", Arg::Text(&count("received-files", files))),
            ],
        ),
    }
}

/// The page after a first submission: the code, shown once. It lists no languages:
/// a link would leave the only page that shows the code.
pub fn code(ctx: Context<'_>, code: &str) -> Markup {
    let title = ctx.t("code-title");
    layout(
        ctx,
        &title,
        Links::None,
        html! {
            h1 { (title) }
            p id="code" lang="en" dir="ltr" { (code) }
            ul {
                @for id in ["code-paper", "code-back", "code-once", "code-english"] {
                    li { (ctx.t(id)) }
                }
            }
            p { a href="/inbox" { (ctx.t("go-inbox")) } }
        },
    )
}

/// An error page: fixed words, never anything the client sent.
pub fn error(ctx: Context<'_>, title: &str, explanation: &str, nothing_kept: bool) -> Markup {
    layout(
        ctx,
        title,
        Links::Languages,
        html! {
            h1 { (title) }
            div.error {
                p { (explanation) }
                @if nothing_kept { p { (ctx.t("nothing-kept")) } }
            }
            p { a href="/" { (ctx.t("back")) } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::language;

    #[test]
    fn counts_read_as_people_read_them() {
        let face = Face::default();
        let ctx = Context {
            not_onion: false,
            onion: None,
            retention: Retention::default(),
            lang: language::english(),
            offered: &[],
            face: &face,
        };
        let receipt = |messages, files| Receipt {
            messages,
            files,
            day: "2026-11-29".into(),
        };
        assert_eq!(received(ctx, &receipt(1, 2)), "1 message and 2 files");
        assert_eq!(received(ctx, &receipt(0, 1)), "1 file");
        assert_eq!(received(ctx, &receipt(1, 0)), "1 message");
    }
}
