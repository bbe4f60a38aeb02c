//! Desks: the newsrooms (or teams) one drop serves, each with its own recipients, so
//! no desk can read another's submissions (SECURITY.md, "Desks"). A config without
//! `[[desk]]` entries has one implicit desk, [`IMPLICIT`], made of `[newsroom]
//! recipients`: that is how every drop before desks worked, and its data directory
//! needs nothing more.

use std::fmt;

use crate::crypto::Recipients;

/// The id of the one desk a config without `[[desk]]` entries has.
pub const IMPLICIT: &str = "newsroom";
/// Longest desk id.
pub const MAX_ID: usize = 32;
/// Longest desk name (characters).
pub const MAX_NAME: usize = 80;
/// Longest desk description (characters).
pub const MAX_DESCRIPTION: usize = 600;

/// One desk.
#[derive(Clone)]
pub struct Desk {
    /// A short slug: `a-z`, `0-9`, `-`; what forms, accounts and bundles name it by.
    pub id: String,
    /// What sources and journalists read.
    pub name: String,
    /// Shown to sources beside the choice, if any.
    pub description: Option<String>,
    /// Every item for this desk is encrypted to these, and only these.
    pub recipients: Recipients,
}

impl fmt::Debug for Desk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Desk")
            .field("id", &self.id)
            .field("recipients", &self.recipients)
            .finish_non_exhaustive()
    }
}

/// Every desk of a drop, in config order, and the ids of desks retired on purpose.
#[derive(Clone, Debug)]
pub struct Desks {
    desks: Vec<Desk>,
    retired: Vec<String>,
}

impl Desks {
    /// Desks as the config validated them (at least one, ids unique).
    pub(crate) fn new(desks: Vec<Desk>, retired: Vec<String>) -> Self {
        assert!(!desks.is_empty(), "the config always has at least one desk");
        Desks { desks, retired }
    }

    /// The one implicit desk of a config without `[[desk]]` entries.
    pub fn newsroom(recipients: Recipients) -> Self {
        Desks::new(
            vec![Desk {
                id: IMPLICIT.to_owned(),
                name: "Newsroom".to_owned(),
                description: None,
                recipients,
            }],
            Vec::new(),
        )
    }

    /// The desk with this id.
    pub fn get(&self, id: &str) -> Option<&Desk> {
        self.desks.iter().find(|d| d.id == id)
    }

    /// Every desk, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Desk> {
        self.desks.iter()
    }

    /// The only desk, when there is one: then sources are never asked to choose.
    pub fn only(&self) -> Option<&Desk> {
        match self.desks.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// How many desks.
    pub fn len(&self) -> usize {
        self.desks.len()
    }

    /// Never true: a config has at least one desk.
    pub fn is_empty(&self) -> bool {
        self.desks.is_empty()
    }

    /// Whether the admin retired this desk id on purpose (`retired_desks`): its sources
    /// stay readable, but it takes no new submissions.
    pub fn is_retired(&self, id: &str) -> bool {
        self.retired.iter().any(|r| r == id)
    }
}

/// Whether `id` is a usable desk id: 1 to 32 of `a-z`, `0-9`, `-`, not starting with `-`.
pub fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
