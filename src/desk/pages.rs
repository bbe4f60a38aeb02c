//! The desk's pages: server-rendered HTML (maud), no JavaScript, one stylesheet,
//! nothing from another origin. Every sentence is in [`text`]. Text from a bundle —
//! labels, names, types, messages, replies — is escaped by maud and shown with
//! invisible and control characters made visible ([`shown`]); files are never
//! rendered, only offered for saving.

use maud::{html, Markup, DOCTYPE};

use super::index::{Entry, EntryKind, Filter, ImportRecord, OutboxReply, SourceSummary};

/// The desk's words, in one place.
pub mod text {
    pub const SITE: &str = "agedrop desk";
    pub const SOURCES: &str = "Sources";
    pub const OUTBOX: &str = "Outbox";
    pub const IMPORTS: &str = "Imports";
    pub const ALL: &str = "All";
    pub const UNREAD: &str = "Unread";
    pub const STARRED: &str = "Starred";
    pub const NO_SOURCES: &str =
        "No sources here yet. Import a bundle: agedrop open BUNDLE --desk DIR -i IDENTITY";
    pub const LAST_ACTIVITY: &str = "Last activity";
    pub const NOTE: &str = "Note";
    pub const DESK: &str = "Desk";
    pub const SOURCE: &str = "Source";
    pub const ITEMS: &str = "Items";
    pub const MESSAGE_FROM_SOURCE: &str = "Message from the source";
    pub const FILE_FROM_SOURCE: &str = "File from the source";
    pub const REPLY_FROM_NEWSROOM: &str = "Reply from the newsroom";
    pub const REPLY_DELETED: &str = "A reply from the newsroom, deleted by the source.";
    pub const REPLY_UNREADABLE: &str =
        "A reply from the newsroom that the identities used for importing cannot read.";
    pub const NEW: &str = "new";
    pub const SAVE: &str = "Save";
    pub const SAVE_ADVICE: &str = "Files from sources can be hostile: they are only saved, never opened here. Open them with care, on this offline machine only.";
    pub const FILE_MISSING: &str =
        "The decrypted file is missing or damaged; import its bundle again.";
    pub const MESSAGE_CUT: &str =
        "The message is longer than shown here; its file holds all of it:";
    pub const MARK_READ: &str = "Mark all read";
    pub const MARK_UNREAD: &str = "Mark all unread";
    pub const STAR: &str = "Star";
    pub const UNSTAR: &str = "Unstar";
    pub const SAVE_NOTE: &str = "Save note";
    pub const NOTE_LABEL: &str = "Private note (stays on this desk)";
    pub const REPLY_TITLE: &str = "Reply";
    pub const REPLY_LABEL: &str = "Your reply (encrypted to the source and the newsroom)";
    pub const WRITE_REPLY: &str = "Put the reply in the outbox";
    pub const PENDING: &str = "Waiting in the outbox";
    pub const PENDING_ADVICE: &str = "Carry the desk's outbox/ directory to the online machine and run: agedrop push --outbox DIR --server URL --token-file FILE. A reply shows as sent once a later bundle brings it back.";
    pub const NOTHING_PENDING: &str = "The outbox is empty.";
    pub const NO_IMPORTS: &str = "Nothing imported yet.";
    pub const IMPORTED_AT: &str = "Imported (UTC)";
    pub const BUNDLE: &str = "Bundle";
    pub const CURSORS: &str = "Cursors";
    pub const NEW_ENTRIES: &str = "New";
    pub const KNOWN: &str = "Already here";
    pub const NO_KEYS: &str = "This desk does not know the newsroom's public keys yet, so it cannot encrypt replies. Import a bundle with a plain identity file (-i) or with --recipient.";
    pub const BACK: &str = "Back to the sources";
}

/// The one stylesheet.
pub const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0 auto;max-width:60rem;padding:1rem;font:1rem/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff}\
nav a{margin-right:1rem}\
a{color:#0b3d91}\
a:focus,button:focus,textarea:focus,input:focus{outline:3px solid #b45309;outline-offset:2px}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.4rem;border-bottom:1px solid #ccc;vertical-align:top}\
.unread{font-weight:700}\
.entry{border:1px solid #888;padding:.5rem 1rem;margin:1rem 0}\
.entry.reply{border-color:#14532d;background:#f0fdf4}\
.entry.pending{border-style:dashed}\
.entry pre,.text{white-space:pre-wrap;overflow-wrap:anywhere;font:inherit;max-height:40rem;overflow:auto}\
.meta{color:#444;font-size:.9rem}\
.badge{display:inline-block;padding:0 .4rem;background:#991b1b;color:#fff;font-size:.8rem}\
.error{border-left:4px solid #991b1b;padding-left:1rem}\
form.inline{display:inline}\
textarea{display:block;width:100%;min-height:8rem;font:inherit;padding:.4rem}\
input[type=text]{width:100%;font:inherit;padding:.3rem}\
label{display:block;font-weight:600;margin-top:.8rem}\
button{font:inherit;padding:.3rem .8rem;margin:.3rem .3rem 0 0}\
";

/// Text from a bundle as shown: control characters (but line breaks and tabs) and
/// invisible characters replaced with U+FFFD, so nothing hides or reorders text.
pub fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (c.is_control() && c != '\n' && c != '\t') || crate::offline::is_invisible(c) {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// A byte count as people read it ("2.4 MB"), with the exact count beside.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {} ({bytes} bytes)", UNITS[unit])
    }
}

/// Links and forms need the per-run prefix and the CSRF token.
pub struct Ctx<'a> {
    /// `/SECRET`.
    pub prefix: &'a str,
    /// The per-run CSRF token.
    pub csrf: &'a str,
    /// Replies waiting in the outbox.
    pub pending: usize,
}

fn layout(ctx: &Ctx<'_>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " — " (text::SITE) }
                link rel="stylesheet" href={ (ctx.prefix) "/style.css" };
            }
            body {
                nav aria-label="Desk" {
                    a href={ (ctx.prefix) "/" } { (text::SOURCES) }
                    a href={ (ctx.prefix) "/outbox" } { (text::OUTBOX) " (" (ctx.pending) ")" }
                    a href={ (ctx.prefix) "/imports" } { (text::IMPORTS) }
                }
                main { (body) }
            }
        }
    }
}

fn csrf_field(ctx: &Ctx<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

/// The list of sources.
pub fn sources(ctx: &Ctx<'_>, filter: Filter, sources: &[SourceSummary]) -> Markup {
    let link = |f: Filter, name: &str, query: &str| {
        html! {
            @if f == filter { strong { (name) } } @else {
                a href={ (ctx.prefix) "/" (query) } { (name) }
            }
            " "
        }
    };
    layout(
        ctx,
        text::SOURCES,
        html! {
            h1 { (text::SOURCES) }
            p {
                (link(Filter::All, text::ALL, ""))
                (link(Filter::Unread, text::UNREAD, "?show=unread"))
                (link(Filter::Starred, text::STARRED, "?show=starred"))
            }
            @if sources.is_empty() {
                p { (text::NO_SOURCES) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { (text::SOURCE) }
                        th scope="col" { (text::DESK) }
                        th scope="col" { (text::LAST_ACTIVITY) }
                        th scope="col" { (text::UNREAD) }
                        th scope="col" { (text::ITEMS) }
                        th scope="col" { (text::STARRED) }
                        th scope="col" { (text::NOTE) }
                    } }
                    tbody {
                        @for source in sources {
                            tr.source.unread[source.unread > 0] {
                                td { a href={ (ctx.prefix) "/sources/" (source.id) } { (shown(&source.label)) } }
                                td { (source.desk.as_deref().map(shown).unwrap_or_else(|| "-".into())) }
                                td { (source.last_day.as_deref().unwrap_or("-")) }
                                td.unread-count { (source.unread) }
                                td { (source.items) }
                                td { @if source.starred { "★" } }
                                td { (shown(&truncate(&source.note, 80))) }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn truncate(text: &str, chars: usize) -> String {
    let mut out: String = text.chars().take(chars).collect();
    if text.chars().nth(chars).is_some() {
        out.push('…');
    }
    out
}

/// What the thread page shows of one entry's content.
pub enum Content {
    /// Text (a message or a reply), and whether it was cut.
    Text(String, bool),
    /// A file (its content is never shown).
    File,
    /// The file is missing or has the wrong size.
    Missing,
    /// Nothing to show (a deleted or unreadable reply).
    None,
}

/// A source's thread.
pub fn thread(
    ctx: &Ctx<'_>,
    source: &SourceSummary,
    entries: &[(Entry, Content)],
    pending: &[OutboxReply],
    can_reply: bool,
) -> Markup {
    let base = format!("{}/sources/{}", ctx.prefix, source.id);
    layout(
        ctx,
        &source.label,
        html! {
            p { a href={ (ctx.prefix) "/" } { (text::BACK) } }
            h1 { (shown(&source.label)) }
            p.meta { "Source id " (source.id) @if let Some(desk) = &source.desk { " · desk " (shown(desk)) } }
            form.inline method="post" action={ (base) "/read" } {
                (csrf_field(ctx))
                @if source.unread > 0 {
                    input type="hidden" name="read" value="yes";
                    button type="submit" { (text::MARK_READ) }
                } @else {
                    input type="hidden" name="read" value="no";
                    button type="submit" { (text::MARK_UNREAD) }
                }
            }
            form.inline method="post" action={ (base) "/star" } {
                (csrf_field(ctx))
                @if source.starred {
                    input type="hidden" name="star" value="no";
                    button type="submit" { (text::UNSTAR) }
                } @else {
                    input type="hidden" name="star" value="yes";
                    button type="submit" { (text::STAR) }
                }
            }
            form method="post" action={ (base) "/note" } {
                (csrf_field(ctx))
                label for="note" { (text::NOTE_LABEL) }
                input #note type="text" name="note" maxlength="500" value=(shown(&source.note));
                button type="submit" { (text::SAVE_NOTE) }
            }
            p.meta { (text::SAVE_ADVICE) }
            @for (entry, content) in entries {
                (entry_box(ctx, entry, content))
            }
            @for reply in pending {
                section.entry.reply.pending {
                    h2 { (text::PENDING) }
                    p.meta { "Written " (reply.written) " · " (reply.file) }
                    pre { (shown(&reply.text)) }
                }
            }
            h2 #reply-title { (text::REPLY_TITLE) }
            @if can_reply {
                form method="post" action={ (base) "/reply" } {
                    (csrf_field(ctx))
                    label for="message" { (text::REPLY_LABEL) }
                    textarea #message name="message" required maxlength=(super::outbox::MAX_REPLY_CHARS) {}
                    button type="submit" { (text::WRITE_REPLY) }
                }
            } @else {
                p.error { (text::NO_KEYS) }
            }
        },
    )
}

fn entry_box(ctx: &Ctx<'_>, entry: &Entry, content: &Content) -> Markup {
    let heading = match entry.kind {
        EntryKind::Message => text::MESSAGE_FROM_SOURCE,
        EntryKind::File => text::FILE_FROM_SOURCE,
        EntryKind::Reply => text::REPLY_FROM_NEWSROOM,
    };
    let unread = entry.kind != EntryKind::Reply && !entry.read;
    html! {
        section.entry.reply[entry.kind == EntryKind::Reply] id={ "e" (entry.seq) } {
            h2 {
                (entry.seq) ". " (heading)
                @if unread { " " span.badge { (text::NEW) } }
            }
            p.meta {
                @if let Some(day) = &entry.day { "Stored " (day) }
                @if let Some(received) = &entry.received { " · received " (shown(received)) }
            }
            @match content {
                Content::Text(body, cut) => {
                    pre { (body) }
                    @if *cut {
                        p.meta { (text::MESSAGE_CUT) " " (entry.file.as_deref().map(shown).unwrap_or_default()) }
                    }
                }
                Content::File => {
                    p {
                        strong { (entry.filename.as_deref().map(shown).unwrap_or_else(|| "(no name)".into())) }
                        " · " (entry.content_type.as_deref().map(shown).unwrap_or_else(|| "type unknown".into()))
                        " · " (size(entry.size.unwrap_or(0)))
                    }
                    @if let Some(id) = &entry.id {
                        p { a href={ (ctx.prefix) "/items/" (id) "/save" } download { (text::SAVE) } }
                    }
                }
                Content::Missing => p.error { (text::FILE_MISSING) },
                Content::None => {
                    @if entry.deleted { p { (text::REPLY_DELETED) } }
                    @else { p { (text::REPLY_UNREADABLE) } }
                }
            }
        }
    }
}

/// The outbox page.
pub fn outbox(ctx: &Ctx<'_>, pending: &[OutboxReply]) -> Markup {
    layout(
        ctx,
        text::OUTBOX,
        html! {
            h1 { (text::OUTBOX) }
            p { (text::PENDING_ADVICE) }
            @if pending.is_empty() {
                p { (text::NOTHING_PENDING) }
            } @else {
                @for reply in pending {
                    section.entry.reply.pending {
                        h2 { "To " a href={ (ctx.prefix) "/sources/" (reply.source_id) } { (shown(&reply.label)) } }
                        p.meta { "Written " (reply.written) " · " (reply.file) }
                        pre { (shown(&reply.text)) }
                    }
                }
            }
        },
    )
}

/// The imports page.
pub fn imports(ctx: &Ctx<'_>, imports: &[ImportRecord]) -> Markup {
    layout(
        ctx,
        text::IMPORTS,
        html! {
            h1 { (text::IMPORTS) }
            @if imports.is_empty() {
                p { (text::NO_IMPORTS) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { (text::IMPORTED_AT) }
                        th scope="col" { (text::BUNDLE) }
                        th scope="col" { (text::CURSORS) }
                        th scope="col" { (text::NEW_ENTRIES) }
                        th scope="col" { (text::KNOWN) }
                    } }
                    tbody {
                        @for import in imports {
                            tr {
                                td { (import.at) }
                                td { (shown(&import.bundle)) }
                                td { (import.since) " → " (import.next_cursor) }
                                td { (import.new_entries) }
                                td { (import.known) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// An error page.
pub fn error(ctx: &Ctx<'_>, title: &str, explanation: &str) -> Markup {
    layout(
        ctx,
        title,
        html! {
            h1 { (title) }
            p.error { (explanation) }
            p { a href={ (ctx.prefix) "/" } { (text::BACK) } }
        },
    )
}

/// A bare refusal (no links: the request lacked the per-run secret or came from
/// elsewhere).
pub fn refusal(explanation: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (text::SITE) } }
            body { p { (explanation) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_bundles_shows_what_hides() {
        assert_eq!(
            shown("a\u{202e}b\u{200b}c\u{1b}[2J\nd\te"),
            "a\u{fffd}b\u{fffd}c\u{fffd}[2J\nd\te"
        );
        assert_eq!(shown("tag\u{e0041}\u{2028}"), "tag\u{fffd}\u{fffd}");
    }

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(size(999), "999 bytes");
        assert_eq!(size(2_400_000), "2.4 MB (2400000 bytes)");
        assert_eq!(size(2 * 1024 * 1024 * 1024), "2.1 GB (2147483648 bytes)");
    }
}
