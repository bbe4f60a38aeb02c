//! The newsroom's face on the source site (config `[site]`): its name, logo,
//! introduction, instructions and contact line, and the languages it offers. All of it
//! is plain text that the pages escape; the logo is a local file, checked here once and
//! served from the site's own origin (SECURITY.md, "Languages and the newsroom's face").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::web::language::{self, Language, ENGLISH};

/// The largest logo file accepted: a logo is a few kilobytes, and every source's
/// browser fetches it through Tor.
pub const MAX_LOGO_BYTES: usize = 64 * 1024;
/// Characters of the newsroom's name.
const MAX_NAME_CHARS: usize = 80;
/// Characters of an introduction or instructions, per language.
const MAX_TEXT_CHARS: usize = 2000;
/// Characters of the contact line, per language.
const MAX_CONTACT_CHARS: usize = 200;

/// `[site]` as written.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    logo: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    languages: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    intro: Option<RawText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instructions: Option<RawText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contact: Option<RawText>,
}

/// Text for every language, or a table of texts by language tag.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum RawText {
    Every(String),
    Per(BTreeMap<String, String>),
}

/// The newsroom's face, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Face {
    /// The newsroom's name, shown in every page's header and title.
    pub name: Option<String>,
    /// Its logo.
    pub logo: Option<Logo>,
    /// The tags of the languages offered, in the order listed.
    pub languages: Vec<&'static str>,
    /// The language of a source whose browser asks for none of them.
    pub default_language: &'static str,
    intro: Localized,
    instructions: Localized,
    contact: Localized,
}

impl Default for Face {
    fn default() -> Self {
        Face {
            name: None,
            logo: None,
            languages: language::shipped_tags().collect(),
            default_language: ENGLISH,
            intro: Localized::default(),
            instructions: Localized::default(),
            contact: Localized::default(),
        }
    }
}

/// A logo file, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logo {
    /// Its format.
    pub kind: LogoKind,
    /// Its bytes, as read when the config was loaded.
    pub bytes: Arc<[u8]>,
}

/// The formats a logo may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogoKind {
    /// PNG.
    Png,
    /// SVG that passed [`check_svg`].
    Svg,
}

impl LogoKind {
    /// Where the site serves it.
    pub fn path(self) -> &'static str {
        match self {
            LogoKind::Png => "/logo.png",
            LogoKind::Svg => "/logo.svg",
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            LogoKind::Png => "image/png",
            LogoKind::Svg => "image/svg+xml",
        }
    }
}

/// Text the newsroom wrote, by language tag; `None` holds the text for every language.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Localized(BTreeMap<Option<&'static str>, String>);

/// A newsroom text chosen for a page, and the language it is written in when that is
/// not the page's (so the page can mark it with `lang`).
pub struct Chosen<'a> {
    /// The text.
    pub text: &'a str,
    /// Its language, when known and other than the page's.
    pub other_language: Option<&'static Language>,
}

impl Face {
    /// Validates `[site]`; a relative logo path is taken relative to `base`.
    pub fn from_raw(raw: &RawSite, base: &Path) -> Result<Face, ConfigError> {
        let languages = match &raw.languages {
            None => language::shipped_tags().collect(),
            Some(tags) => offered_languages(tags)?,
        };
        let default_language = match &raw.default_language {
            None if languages.contains(&ENGLISH) => ENGLISH,
            None => languages[0],
            Some(tag) => *languages.iter().find(|t| *t == tag).ok_or_else(|| {
                ConfigError::invalid(
                    "site.default_language",
                    format!(
                        "`{tag}` is not one of site.languages ({})",
                        languages.join(", ")
                    ),
                )
            })?,
        };
        let name = match &raw.name {
            None => None,
            Some(name) => {
                let name = name.trim();
                if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                    return Err(ConfigError::invalid(
                        "site.name",
                        format!("must be 1 to {MAX_NAME_CHARS} characters"),
                    ));
                }
                if name.chars().any(char::is_control) {
                    return Err(ConfigError::invalid("site.name", "must be one line"));
                }
                Some(name.to_owned())
            }
        };
        let logo = match &raw.logo {
            None => None,
            Some(path) => Some(load_logo(&base.join(path))?),
        };
        let text = |key: &str, raw: &Option<RawText>, max: usize, one_line: bool| {
            localized(key, raw.as_ref(), &languages, max, one_line)
        };
        Ok(Face {
            intro: text("site.intro", &raw.intro, MAX_TEXT_CHARS, false)?,
            instructions: text(
                "site.instructions",
                &raw.instructions,
                MAX_TEXT_CHARS,
                false,
            )?,
            contact: text("site.contact", &raw.contact, MAX_CONTACT_CHARS, true)?,
            name,
            logo,
            languages,
            default_language,
        })
    }

    /// The introduction for a page in `page`, if the newsroom wrote one.
    pub fn intro(&self, page: &Language) -> Option<Chosen<'_>> {
        self.choose(&self.intro, page)
    }

    /// The instructions for a page in `page`, if the newsroom wrote them.
    pub fn instructions(&self, page: &Language) -> Option<Chosen<'_>> {
        self.choose(&self.instructions, page)
    }

    /// The contact line for a page in `page`, if the newsroom gave one.
    pub fn contact(&self, page: &Language) -> Option<Chosen<'_>> {
        self.choose(&self.contact, page)
    }

    /// The page's language's text; else the text for every language; else the
    /// default language's; else any, marked with its language.
    fn choose<'a>(&'a self, texts: &'a Localized, page: &Language) -> Option<Chosen<'a>> {
        let shown = |tag: Option<&'static str>, text: &'a String| Chosen {
            text,
            other_language: tag.filter(|t| *t != page.tag).and_then(language::find),
        };
        if let Some(text) = texts.0.get(&Some(page.tag)) {
            return Some(shown(None, text));
        }
        if let Some(text) = texts.0.get(&None) {
            return Some(shown(None, text));
        }
        if let Some(text) = texts.0.get(&Some(self.default_language)) {
            return Some(shown(Some(self.default_language), text));
        }
        texts.0.iter().next().map(|(tag, text)| shown(*tag, text))
    }
}

fn offered_languages(tags: &[String]) -> Result<Vec<&'static str>, ConfigError> {
    let known = || {
        language::all()
            .iter()
            .map(|l| l.tag)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if tags.is_empty() {
        return Err(ConfigError::invalid(
            "site.languages",
            format!("must list at least one of: {}", known()),
        ));
    }
    let mut offered = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        let found = language::find(tag).ok_or_else(|| {
            ConfigError::invalid(
                format!("site.languages[{i}]"),
                format!("`{tag}` is not a language agedrop has; it has: {}", known()),
            )
        })?;
        if offered.contains(&found.tag) {
            return Err(ConfigError::invalid(
                format!("site.languages[{i}]"),
                format!("`{tag}` is listed twice"),
            ));
        }
        offered.push(found.tag);
    }
    Ok(offered)
}

fn localized(
    key: &str,
    raw: Option<&RawText>,
    languages: &[&'static str],
    max_chars: usize,
    one_line: bool,
) -> Result<Localized, ConfigError> {
    let mut texts = BTreeMap::new();
    let entries: Vec<(Option<&String>, &String)> = match raw {
        None => return Ok(Localized::default()),
        Some(RawText::Every(text)) => vec![(None, text)],
        Some(RawText::Per(map)) => map.iter().map(|(tag, text)| (Some(tag), text)).collect(),
    };
    for (tag, text) in entries {
        let (key, tag) = match tag {
            None => (key.to_owned(), None),
            Some(tag) => {
                let key = format!("{key}.{tag}");
                let Some(found) = languages.iter().find(|t| *t == tag) else {
                    return Err(ConfigError::invalid(
                        key,
                        format!(
                            "`{tag}` is not one of site.languages ({})",
                            languages.join(", ")
                        ),
                    ));
                };
                (key, Some(*found))
            }
        };
        let text = text.trim();
        if text.is_empty() || text.chars().count() > max_chars {
            return Err(ConfigError::invalid(
                key,
                format!("must be 1 to {max_chars} characters"),
            ));
        }
        let control = |c: char| c.is_control() && (one_line || c != '\n');
        if text.chars().any(control) {
            return Err(ConfigError::invalid(
                key,
                if one_line {
                    "must be one line of text"
                } else {
                    "must be plain text (paragraphs separated by blank lines)"
                },
            ));
        }
        texts.insert(tag, text.to_owned());
    }
    Ok(Localized(texts))
}

fn load_logo(path: &Path) -> Result<Logo, ConfigError> {
    let invalid = |problem: String| ConfigError::invalid("site.logo", problem);
    let shown = path.display();
    let cannot_read = |err: std::io::Error| invalid(format!("cannot read {shown}: {err}"));
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    // A device or a pipe named by mistake must not hang or fill memory at start-up.
    let metadata = file.metadata().map_err(cannot_read)?;
    if !metadata.is_file() {
        return Err(invalid(format!("{shown} is not a regular file")));
    }
    let too_big = |len: u64| {
        invalid(format!(
            "{shown} is {len} bytes; a logo may be at most {MAX_LOGO_BYTES}"
        ))
    };
    if metadata.len() > MAX_LOGO_BYTES as u64 {
        return Err(too_big(metadata.len()));
    }
    let mut bytes = Vec::new();
    // The file may grow after the look at its size.
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_LOGO_BYTES as u64 + 1),
        &mut bytes,
    )
    .map_err(cannot_read)?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let kind = if bytes.starts_with(PNG_SIGNATURE) {
        // The first chunk of every PNG is IHDR.
        if bytes.get(12..16) != Some(b"IHDR") {
            return Err(invalid(format!("{shown} is not a whole PNG file")));
        }
        LogoKind::Png
    } else {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| invalid(format!("{shown} is neither a PNG nor an SVG file")))?;
        check_svg(text).map_err(|problem| {
            invalid(format!(
                "{shown}: {problem}. Only plain SVG shapes and text are served; export the \
                 logo as PNG, or as plain SVG without scripts, styles, links or images"
            ))
        })?;
        LogoKind::Svg
    };
    Ok(Logo {
        kind,
        bytes: bytes.into(),
    })
}

const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";
const XLINK_NAMESPACE: &str = "http://www.w3.org/1999/xlink";
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// The SVG elements a logo may use: shapes, text, gradients and references inside the
/// file. Not `script`, `style`, `foreignObject`, `image`, `a`, animations or fonts.
const SVG_ELEMENTS: [&str; 21] = [
    "svg",
    "g",
    "path",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "text",
    "tspan",
    "defs",
    "title",
    "desc",
    "linearGradient",
    "radialGradient",
    "stop",
    "clipPath",
    "mask",
    "symbol",
    "use",
];

/// Refuses an SVG that is not plain shapes and text: anything that could run a script,
/// load from elsewhere or hide a document (a DTD, an entity, a processing instruction,
/// an element outside [`SVG_ELEMENTS`], an `on…` attribute, a link or `url()` that
/// points outside the file). Refusing rather than cleaning: a cleaned logo would not
/// be the file the admin checked.
pub fn check_svg(text: &str) -> Result<(), String> {
    // roxmltree refuses a DTD (and so any entity) unless asked to allow one.
    let doc =
        roxmltree::Document::parse(text).map_err(|err| format!("not well-formed XML: {err}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "svg" || root.tag_name().namespace() != Some(SVG_NAMESPACE) {
        return Err("the root element is not <svg> in the SVG namespace".to_owned());
    }
    for node in doc.descendants() {
        if node.is_pi() {
            return Err("it has a processing instruction".to_owned());
        }
        if !node.is_element() {
            continue;
        }
        let name = node.tag_name();
        if name.namespace() != Some(SVG_NAMESPACE) || !SVG_ELEMENTS.contains(&name.name()) {
            return Err(format!("the element <{}> is not allowed", name.name()));
        }
        for attribute in node.attributes() {
            let attr = attribute.name();
            match attribute.namespace() {
                None | Some(XLINK_NAMESPACE) | Some(XML_NAMESPACE) => {}
                Some(_) => return Err(format!("the attribute {attr} is not allowed")),
            }
            if attr.to_ascii_lowercase().starts_with("on") {
                return Err(format!("the attribute {attr} is not allowed"));
            }
            let value = attribute.value().to_ascii_lowercase();
            if attr == "href" && !value.trim_start().starts_with('#') {
                return Err("a link points outside the file".to_owned());
            }
            if ["javascript:", "data:", "@import", "expression("]
                .iter()
                .any(|bad| value.contains(bad))
            {
                return Err(format!("the attribute {attr} is not allowed"));
            }
            if value.match_indices("url(").any(|(at, _)| {
                let rest = value[at + 4..].trim_start_matches([' ', '\'', '"']);
                !rest.starts_with('#')
            }) {
                return Err("a url() points outside the file".to_owned());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = r#"xmlns="http://www.w3.org/2000/svg""#;

    #[test]
    fn plain_svg_passes_and_active_or_external_content_is_refused() {
        let ok = format!(
            r##"<svg {NS} viewBox="0 0 10 10"><defs><linearGradient id="g"><stop offset="0"/></linearGradient></defs><rect width="10" height="10" fill="url(#g)"/><text x="1" y="9">News</text></svg>"##
        );
        assert_eq!(check_svg(&ok), Ok(()));
        for bad in [
            format!(r#"<svg {NS}><script>alert(1)</script></svg>"#),
            format!(r#"<svg {NS} onload="alert(1)"/>"#),
            format!(r#"<svg {NS}><style>rect{{fill:red}}</style></svg>"#),
            format!(r#"<svg {NS}><image href="http://evil.example/x.png"/></svg>"#),
            format!(
                r#"<svg {NS} xmlns:xl="http://www.w3.org/1999/xlink"><use xl:href="http://evil.example/a.svg#x"/></svg>"#
            ),
            format!(r#"<svg {NS}><rect style="fill:url(http://evil.example/p)"/></svg>"#),
            format!(r#"<svg {NS}><foreignObject/></svg>"#),
            format!(r#"<?xml-stylesheet href="http://evil.example/s.css"?><svg {NS}/>"#),
            format!(r#"<!DOCTYPE svg [<!ENTITY x "y">]><svg {NS}>&x;</svg>"#),
            r#"<svg/>"#.to_owned(),
            "not xml".to_owned(),
        ] {
            assert!(check_svg(&bad).is_err(), "accepted: {bad}");
        }
    }
}
