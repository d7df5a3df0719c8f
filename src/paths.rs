//! Untrusted names from the network, checked the same way on both sides.
//!
//! A name is a relative path of plain components separated by `/`: `a/b.txt` is fine; an empty
//! name or component, `.`, `..`, a leading `/`, a `\`, NUL and every control character are
//! refused. Both the server (before touching its directory) and the client (before writing
//! anything a server named) use [`SafeName::new`], so neither trusts the other to have checked
//! (scp CVE-2019-6111, rsync CVE-2024-12087, croc CVE-2023-43616 were all names nobody checked).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::protocol::MAX_NAME_LEN;

/// Why a name was refused. Each message is one sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing was given.
    #[error("the name is empty")]
    Empty,
    /// Longer than [`MAX_NAME_LEN`] bytes.
    #[error("the name is longer than {MAX_NAME_LEN} bytes")]
    TooLong,
    /// Starts with `/`.
    #[error("the name must be relative, not start with '/'")]
    Absolute,
    /// Contains `\`, which means a separator on some systems.
    #[error("the name contains a backslash")]
    Backslash,
    /// Contains NUL or another control character.
    #[error("the name contains a control character")]
    Control,
    /// Has an empty component (`a//b`, a trailing `/`).
    #[error("the name has an empty path component")]
    EmptyComponent,
    /// Has a `.` or `..` component.
    #[error("the name may not contain '.' or '..' components")]
    DotComponent,
}

/// A name that passed validation: safe to join under a root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafeName(String);

impl SafeName {
    /// Validates an untrusted name.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if name.starts_with('/') {
            return Err(NameError::Absolute);
        }
        if name.contains('\\') {
            return Err(NameError::Backslash);
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::Control);
        }
        for part in name.split('/') {
            match part {
                "" => return Err(NameError::EmptyComponent),
                "." | ".." => return Err(NameError::DotComponent),
                _ => {}
            }
        }
        Ok(SafeName(name.to_owned()))
    }

    /// The name as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The plain components, first to last.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last component: what a client names a downloaded file.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// `root` joined with this name. Only plain components are added, so the result is lexically
    /// under `root`; symlinks are the caller's concern.
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        path.extend(self.components());
        path
    }
}

impl fmt::Display for SafeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `text` as it goes in a URL path: every byte but the unreserved ones (RFC 3986) and `/`
/// percent-encoded. Share links and the S3 requests qft signs itself both use it (the latter
/// as object_store encodes its keys, so both name the same object).
pub fn percent_encode_path(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes what would make a name drive the terminal it is printed on (control characters: scp
/// CVE-2019-6109, croc CVE-2023-43620) or show as something it is not ([`is_deceptive`]:
/// `invoice\u{202e}fdp.exe` prints as `invoiceexe.pdf`), as `\u{...}`. Other text, including
/// non-ASCII, is kept.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_deceptive(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that are not control characters but show as nothing or change how the text around
/// them shows (Trojan Source, CVE-2021-42574): direction marks, embeddings, overrides and
/// isolates; zero-width spaces, joiners and other invisible format characters; line and paragraph
/// separators; the invisible Hangul fillers; language tags.
pub fn is_deceptive(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                     // soft hyphen
        | '\u{034F}'                   // combining grapheme joiner
        | '\u{061C}'                   // Arabic letter mark
        | '\u{115F}' | '\u{1160}'       // Hangul fillers
        | '\u{17B4}' | '\u{17B5}'       // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}'      // Mongolian selectors and vowel separator
        | '\u{200B}'..='\u{200F}'      // zero-width space, joiners, LRM, RLM
        | '\u{2028}'..='\u{202E}'      // line/paragraph separators, embeddings, overrides
        | '\u{2060}'..='\u{206F}'      // word joiner, invisible operators, isolates
        | '\u{3164}' | '\u{FFA0}'       // Hangul fillers
        | '\u{FEFF}'                   // zero-width no-break space
        | '\u{FFF9}'..='\u{FFFB}'      // interlinear annotation
        | '\u{1D173}'..='\u{1D17A}'    // musical formatting
        | '\u{E0000}'..='\u{E007F}'    // tags
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_encoded_byte_by_byte_keeping_slashes() {
        assert_eq!(
            percent_encode_path("a/b c/é+%.txt"),
            "a/b%20c/%C3%A9%2B%25.txt"
        );
        assert_eq!(percent_encode_path("plain-_.~/x"), "plain-_.~/x");
    }

    #[test]
    fn plain_names_pass() {
        for ok in [
            "a",
            "a/b.txt",
            "dir/sub/file with spaces",
            "ünïcode.bin",
            ".hidden",
            "a..b",
        ] {
            assert_eq!(SafeName::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn every_bad_shape_is_refused_with_its_reason() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            (&long, NameError::TooLong),
            ("/etc/passwd", NameError::Absolute),
            ("a\\b", NameError::Backslash),
            ("a\0b", NameError::Control),
            ("a\x1b[2Jb", NameError::Control),
            ("a\nb", NameError::Control),
            ("a\u{9b}b", NameError::Control),
            ("a//b", NameError::EmptyComponent),
            ("a/", NameError::EmptyComponent),
            ("..", NameError::DotComponent),
            ("../x", NameError::DotComponent),
            ("a/../../x", NameError::DotComponent),
            (".", NameError::DotComponent),
            ("a/./b", NameError::DotComponent),
        ];
        for (name, want) in cases {
            assert_eq!(&SafeName::new(name).unwrap_err(), want, "{name:?}");
        }
    }

    #[test]
    fn joins_only_under_the_root_and_names_the_last_part() {
        let n = SafeName::new("x/y/z.bin").unwrap();
        assert_eq!(n.under(Path::new("/srv")), PathBuf::from("/srv/x/y/z.bin"));
        assert_eq!(n.file_name(), "z.bin");
    }

    #[test]
    fn sanitize_escapes_terminal_controls() {
        assert_eq!(sanitize("ok\x1b[31mred\n"), "ok\\u{1b}[31mred\\n");
        assert_eq!(sanitize("naïve"), "naïve");
    }

    #[test]
    fn names_that_show_as_something_else_are_escaped() {
        // Shown raw, this reads "invoiceexe.pdf".
        assert_eq!(
            sanitize("invoice\u{202E}fdp.exe"),
            "invoice\\u{202e}fdp.exe"
        );
        for sneaky in [
            "a\u{200B}b",         // zero-width space
            "a\u{200D}b",         // zero-width joiner
            "a\u{2066}b\u{2069}", // isolates
            "a\u{FEFF}b",         // BOM
            "a\u{2028}b",         // line separator
            "a\u{3164}b",         // Hangul filler
            "a\u{E0041}b",        // tag
            "a\u{00AD}b",         // soft hyphen
        ] {
            let shown = sanitize(sneaky);
            assert!(shown.starts_with("a\\u{"), "{sneaky:?} -> {shown}");
            assert!(!shown.chars().any(is_deceptive), "{shown}");
        }
        // Scripts that need marks of their own are left alone.
        for fine in [
            "日本語.txt",
            "Ünïcödé",
            "שלום.txt",
            "مرحبا",
            "emoji 👍🏽",
            "e\u{301}",
        ] {
            assert_eq!(sanitize(fine), fine);
        }
    }
}
