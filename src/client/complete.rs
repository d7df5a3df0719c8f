//! Tab completion at the prompt: command names, local paths for PUT, LCD, LLS and `get -o`,
//! remote names for GET, DELETE, CD, LIST and `put -o`. Both kinds come out the same way: the
//! whole word, escaped as the prompt's parser reads it, so a word begun inside a quote is
//! completed whole instead of being left with the quote open, and `~` works in local paths.
//!
//! Remote names come from the server's listing of the directory being typed into, fetched on the
//! first TAB there and cached in [`RemoteNames`], which outlives any one editor (see
//! [`super::prompt`]) and is emptied after every command that can change the server's files.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::command::{takes_local_paths, takes_remote_names, WORDS};
use super::local::expand_tilde;
use super::{remote_path, Client};
use crate::protocol::{Entry, EntryKind};

/// How long a TAB may wait for a listing before it completes nothing.
const LIST_WAIT: Duration = Duration::from_secs(5);

/// The server's listings by directory, shared by every line's editor.
#[derive(Debug, Clone)]
pub struct RemoteNames {
    client: Client,
    /// Completion runs on the editor's blocking thread; listings are fetched through this.
    runtime: tokio::runtime::Handle,
    cache: Arc<Mutex<HashMap<String, Vec<Entry>>>>,
}

impl RemoteNames {
    /// Names on `client`'s server, fetched through `runtime` when first needed.
    pub fn new(client: Client, runtime: tokio::runtime::Handle) -> Self {
        RemoteNames {
            client,
            runtime,
            cache: Arc::default(),
        }
    }

    /// Forgets every listing: the next TAB lists again.
    pub fn invalidate(&self) {
        self.lock().clear();
    }

    /// Records a listing just made for another reason (`cd` checks its directory with one).
    pub fn remember(&self, dir: &str, entries: Vec<Entry>) {
        self.lock().insert(dir.to_owned(), entries);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Entry>>> {
        // A panic elsewhere cannot leave a half-written cache worth refusing.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries of `dir`, from the cache or the server. Called on a blocking thread only.
    fn entries(&self, dir: &str) -> Vec<Entry> {
        if let Some(entries) = self.lock().get(dir) {
            return entries.clone();
        }
        let client = self.client.clone();
        let wanted = dir.to_owned();
        let fetched = self
            .runtime
            .block_on(async move { tokio::time::timeout(LIST_WAIT, client.list(&wanted)).await });
        match fetched {
            Ok(Ok(entries)) => {
                self.remember(dir, entries.clone());
                entries
            }
            _ => Vec::new(),
        }
    }
}

/// The editor's helper for one line: completion against the current directories.
pub struct QftHelper {
    remote: Option<RemoteNames>,
    /// The prompt's remote working directory, set before each line is read.
    cwd: String,
}

impl QftHelper {
    /// A helper for a line typed while the remote working directory is `cwd`.
    pub fn new(remote: Option<RemoteNames>, cwd: &str) -> Self {
        QftHelper {
            remote,
            cwd: cwd.to_owned(),
        }
    }

    /// The remote working directory changed (`cd`).
    pub fn set_cwd(&mut self, cwd: &str) {
        cwd.clone_into(&mut self.cwd);
    }

    /// The remote working directory names are completed against.
    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    fn remote_candidates(&self, typed: &str, dirs_only: bool) -> Vec<Pair> {
        let Some(remote) = &self.remote else {
            return Vec::new();
        };
        let (dir_part, prefix) = split_typed(typed);
        let Ok(dir) = remote_path::resolve(&self.cwd, dir_part) else {
            return Vec::new();
        };
        let entries = remote.entries(&dir);
        let names = entries
            .iter()
            .map(|e| (e.name.clone(), e.kind == EntryKind::Dir));
        candidates(dir_part, prefix, names, dirs_only)
    }
}

/// Local paths, read as the prompt reads them (`~` is the home directory). Links to
/// directories count as directories, as in a shell.
fn local_candidates(typed: &str, dirs_only: bool) -> Vec<Pair> {
    let (dir_part, prefix) = split_typed(typed);
    let dir = match dir_part {
        "" => std::path::PathBuf::from("."),
        dir => expand_tilde(dir),
    };
    let Ok(read) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let names = read.filter_map(Result::ok).filter_map(|item| {
        let name = item.file_name().into_string().ok()?;
        let is_dir = item.path().metadata().is_ok_and(|m| m.is_dir());
        Some((name, is_dir))
    });
    candidates(dir_part, prefix, names, dirs_only)
}

/// `typed` split after its last `/`: the directory part as typed, and the start of a name.
fn split_typed(typed: &str) -> (&str, &str) {
    match typed.rfind('/') {
        Some(i) => typed.split_at(i + 1),
        None => ("", typed),
    }
}

/// The names in one directory that complete `prefix`, sorted, each as a whole word for the
/// prompt's parser: the typed directory part and the name, escaped (so a word begun inside a
/// quote comes out whole, never with a quote left open), then `/` for a directory (to go on
/// typing) or a space. A name starting with `.` only when the prefix does.
fn candidates(
    dir_part: &str,
    prefix: &str,
    names: impl Iterator<Item = (String, bool)>,
    dirs_only: bool,
) -> Vec<Pair> {
    let mut out: Vec<Pair> = names
        .filter(|(name, is_dir)| {
            name.starts_with(prefix)
                && (*is_dir || !dirs_only)
                && (!name.starts_with('.') || prefix.starts_with('.'))
        })
        .map(|(name, is_dir)| {
            let suffix = if is_dir { "/" } else { " " };
            Pair {
                display: format!("{name}{}", if is_dir { "/" } else { "" }),
                replacement: format!("{}{suffix}", escape(&format!("{dir_part}{name}"))),
            }
        })
        .collect();
    out.sort_by(|a, b| a.display.cmp(&b.display));
    out
}

impl Completer for QftHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let (start, typed, index) = current_word(before);
        if index == 0 {
            let lower = typed.to_lowercase();
            let words = WORDS
                .iter()
                .filter(|w| w.starts_with(&lower))
                .map(|w| Pair {
                    display: (*w).to_owned(),
                    replacement: format!("{w} "),
                })
                .collect();
            return Ok((start, words));
        }
        let mut words = before[..start].split_whitespace();
        let command = words.next().unwrap_or("").to_lowercase();
        // The word after -o is where a transfer goes: local for get, remote for put.
        let after_output = matches!(words.next_back(), Some("-o" | "--output"));
        let found = match (command.as_str(), after_output) {
            ("get" | "download", true) => local_candidates(&typed, false),
            ("put" | "upload", true) => self.remote_candidates(&typed, true),
            ("lcd", _) => local_candidates(&typed, true),
            (command, _) if takes_local_paths(command) => local_candidates(&typed, false),
            (command, _) => match takes_remote_names(command) {
                Some(dirs_only) => self.remote_candidates(&typed, dirs_only),
                None => return Ok((pos, Vec::new())),
            },
        };
        Ok((start, found))
    }
}

impl Hinter for QftHelper {
    type Hint = String;
}

impl Highlighter for QftHelper {}

impl Validator for QftHelper {}

impl Helper for QftHelper {}

/// The word under the cursor in `before` (the line up to the cursor), read as the prompt's parser
/// reads words (quotes, backslash escapes): its start, its unescaped text, and its index.
fn current_word(before: &str) -> (usize, String, usize) {
    let mut index = 0;
    let mut start = 0;
    let mut text = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        if escaped {
            text.push(c);
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => escaped = true,
            (Some(_), c) => text.push(c),
            (None, c) if c.is_whitespace() => {
                if in_word {
                    index += 1;
                    in_word = false;
                    text.clear();
                }
            }
            (None, c) => {
                if !in_word {
                    in_word = true;
                    start = i;
                }
                match c {
                    '\\' => escaped = true,
                    '\'' | '"' => quote = Some(c),
                    c => text.push(c),
                }
            }
        }
    }
    if !in_word {
        start = before.len();
    }
    (start, text, index)
}

/// A name as one word for the prompt's parser: spaces, quotes and backslashes escaped.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_whitespace() || matches!(c, '\'' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_under_the_cursor_is_read_like_the_parser_reads_it() {
        assert_eq!(current_word(""), (0, String::new(), 0));
        assert_eq!(current_word("ge"), (0, "ge".into(), 0));
        assert_eq!(current_word("get "), (4, String::new(), 1));
        assert_eq!(current_word("get rep"), (4, "rep".into(), 1));
        assert_eq!(current_word("get a my\\ fi"), (6, "my fi".into(), 2));
        assert_eq!(current_word("get 'my fi"), (4, "my fi".into(), 1));
        assert_eq!(current_word("get -r sub/x"), (7, "sub/x".into(), 2));
    }

    #[test]
    fn names_are_escaped_back_into_one_word() {
        assert_eq!(escape("my file's.txt"), "my\\ file\\'s.txt");
        let line = format!("get {}", escape("a \"b\" \\c"));
        assert_eq!(
            crate::client::command::parse(&line).unwrap(),
            Some(crate::client::command::Command::Get {
                names: vec!["a \"b\" \\c".into()],
                output: None,
                recursive: false,
                force: false,
            })
        );
    }
}
