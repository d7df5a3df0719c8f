//! Making a link, the same from `qft share` and from an admin's `share` through the server:
//! whether a name may be shared and as what ([`plan`], from what the storage says it is), the
//! link itself ([`link`]) and the lines printed about it ([`summary`], [`list_line`]).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::{when, ShareAccess, ShareInfo, ShareKind, MAX_EXPIRY};
use crate::paths::{sanitize, SafeName};
use crate::protocol::EntryKind;

/// The link to hand out: the page at `base` (e.g. `http://localhost:4433/`), with the token,
/// the certificate hashes a browser pins, the server's UDP port when known (for a page behind a
/// proxy on another port) and (for the page to show, not trusted) the name and what the link
/// allows, all in the fragment, which browsers never send.
pub fn link(
    share: &ShareInfo,
    base: &str,
    token: &str,
    hashes: &[[u8; 32]],
    port: Option<u16>,
) -> String {
    let hashes: Vec<String> = hashes.iter().map(|h| URL_SAFE_NO_PAD.encode(h)).collect();
    let access = match share.upload_only {
        false => "read",
        true => "upload",
    };
    let kind = match share.dir {
        false => "file",
        true => "dir",
    };
    let mut link = format!(
        "{base}#t={token}&m={access}&k={kind}&n={}",
        crate::paths::percent_encode_path(&share.name)
    );
    if !hashes.is_empty() {
        link.push_str(&format!("&h={}", hashes.join(",")));
    }
    if let Some(port) = port {
        link.push_str(&format!("&p={port}"));
    }
    link
}

/// What a new link allows, said once beside it: `share ID: read NAME until TIME[, N uses]`.
pub fn summary(share: &ShareInfo) -> String {
    let uses = share
        .max_uses
        .map_or(String::new(), |n| format!(", {n} uses"));
    format!(
        "share {}: {} {} until {}{uses}",
        share.id,
        access_word(share),
        sanitize(&share.name),
        when(share.expires).trim_start_matches("at ")
    )
}

/// One line of `share --list`: ID, access, expiry, kind, uses, state and name, tab-separated.
pub fn list_line(share: &ShareInfo, now: u64) -> String {
    let uses = match share.max_uses {
        Some(max) => format!("{}/{max}", share.used),
        None => format!("{}", share.used),
    };
    let state = match share.max_uses {
        _ if now >= share.expires => "expired",
        Some(max) if share.used >= max => "used up",
        _ => "active",
    };
    format!(
        "{}\t{}\t{}\t{}\tuses {uses}\t{state}\t{}",
        share.id,
        access_word(share),
        when(share.expires).trim_start_matches("at "),
        match share.dir {
            false => "file",
            true => "dir",
        },
        sanitize(&share.name),
    )
}

fn access_word(share: &ShareInfo) -> &'static str {
    match share.upload_only {
        false => "read",
        true => "upload-only",
    }
}

/// Why a share cannot be made: one sentence each, the same from `qft share` and the prompt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unshareable {
    /// The server's private area.
    #[error("cannot share '{0}': the server's private area is not served")]
    Private(String),
    /// A link, a device...
    #[error("cannot share '{0}': it is neither a file nor a directory")]
    NotFileOrDir(String),
    /// A drop box must be a directory.
    #[error("an upload-only link is for a directory; '{0}' is a file")]
    UploadOnlyFile(String),
    /// Past [`MAX_EXPIRY`].
    #[error("a link may last at most 30 days")]
    TooLong,
}

/// Refuses a name that may never be shared, before the storage is asked about it.
pub fn check_name(name: &SafeName) -> Result<(), Unshareable> {
    match name.components().next() == Some(crate::storage::PRIVATE_DIR) {
        true => Err(Unshareable::Private(sanitize(name.as_str()))),
        false => Ok(()),
    }
}

/// What a share of `name` would be, given what the storage says it is: its kind and access,
/// or why it cannot be made.
pub fn plan(
    name: &SafeName,
    kind: EntryKind,
    upload_only: bool,
    expires_in: Duration,
) -> Result<(ShareKind, ShareAccess), Unshareable> {
    check_name(name)?;
    let shown = || sanitize(name.as_str());
    let kind = match kind {
        EntryKind::File => ShareKind::File,
        EntryKind::Dir => ShareKind::Dir,
        EntryKind::Other => return Err(Unshareable::NotFileOrDir(shown())),
    };
    let access = match upload_only {
        true if kind == ShareKind::File => return Err(Unshareable::UploadOnlyFile(shown())),
        true => ShareAccess::UploadOnly,
        false => ShareAccess::Read,
    };
    if expires_in > MAX_EXPIRY {
        return Err(Unshareable::TooLong);
    }
    Ok((kind, access))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_planned_by_what_the_storage_says() {
        let name = |n: &str| SafeName::new(n).unwrap();
        let day = Duration::from_secs(86400);
        assert_eq!(
            plan(&name("a"), EntryKind::Dir, true, day),
            Ok((ShareKind::Dir, ShareAccess::UploadOnly))
        );
        assert_eq!(
            plan(&name("a"), EntryKind::File, false, day),
            Ok((ShareKind::File, ShareAccess::Read))
        );
        assert_eq!(
            plan(&name("a"), EntryKind::File, true, day),
            Err(Unshareable::UploadOnlyFile("a".into()))
        );
        assert_eq!(
            plan(&name("a"), EntryKind::Other, false, day),
            Err(Unshareable::NotFileOrDir("a".into()))
        );
        assert_eq!(
            plan(&name("a"), EntryKind::File, false, MAX_EXPIRY + day),
            Err(Unshareable::TooLong)
        );
        let private = format!("{}/x", crate::storage::PRIVATE_DIR);
        assert!(matches!(
            plan(&name(&private), EntryKind::File, false, day),
            Err(Unshareable::Private(_))
        ));
    }
}
