//! A share link as the protocol shows it to an admin client ([`ShareInfo`]), and how many fill
//! a page. The links themselves are kept and checked by [`crate::share`].

use serde::{Deserialize, Serialize};

use super::{Message, Response, MAX_NAME_LEN};

/// One share link as a client sees it (never its token, its hash or the server's paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInfo {
    /// What `share --revoke` takes.
    pub id: String,
    /// The shared name, relative to the served root.
    pub name: String,
    /// A directory (else one file).
    pub dir: bool,
    /// Upload-only (else read).
    pub upload_only: bool,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; from then on the link is refused.
    pub expires: u64,
    /// Transfers allowed in all, if limited.
    pub max_uses: Option<u64>,
    /// Transfers begun so far.
    pub used: u64,
}

/// Shares per [`Response::SharePage`]: a [`ShareInfo`] is a name of up to [`MAX_NAME_LEN`]
/// bytes and at most 80 more.
pub const SHARE_PAGE_ENTRIES: usize = 100;

const _: () = assert!(SHARE_PAGE_ENTRIES * (MAX_NAME_LEN + 80) + 64 < Response::MAX_LEN);
