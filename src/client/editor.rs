//! The terminal's line editor for the prompt (rustyline): one per session, its history kept in
//! the qft home, completion through [`QftHelper`], and a fresh editor when what was typed ahead
//! must be dropped.

use std::path::PathBuf;

use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::Editor;

use super::complete::{QftHelper, RemoteNames};

/// The history file in the qft home.
pub const HISTORY_FILE: &str = "history";

/// Lines of history kept.
const HISTORY_SIZE: usize = 1000;

/// The terminal's line editor, one for the whole session, so that what it read past the end of
/// a line (the rest of a paste, lines typed ahead) is still there for the next line. It leaves
/// SIGINT alone (rustyline's `signal-hook` feature): while a command runs, Ctrl-C reaches the
/// prompt's handler, which cancels the command; while a line is read, Ctrl-C is a key.
pub(super) struct LineEditor {
    /// `None` only while a line is being read on the blocking pool.
    editor: Option<Editor<QftHelper, FileHistory>>,
    /// The history file, or `None` to keep this session's history in memory only (no qft home,
    /// or the file could not be written).
    file: Option<PathBuf>,
    /// Completion's shared cache, for the helper of a new editor.
    names: Option<RemoteNames>,
}

impl LineEditor {
    pub fn open(names: Option<RemoteNames>) -> Result<Self, String> {
        let file = crate::home::qft_home()
            .ok()
            .map(|home| home.join(HISTORY_FILE));
        let mut editor = new_editor(QftHelper::new(names.clone(), ""))?;
        if let Some(path) = file.as_ref().filter(|p| p.exists()) {
            // An unreadable history costs the recall, not the session.
            let _ = editor.load_history(path);
        }
        Ok(LineEditor {
            editor: Some(editor),
            file,
            names,
        })
    }

    /// Reads one line (or a pasted text of several) with editing, completion against `cwd` and
    /// history. `None` at end of input (Ctrl-D). It runs on a blocking thread because it blocks
    /// while the user types.
    pub async fn read(&mut self, cwd: &str) -> Result<Option<String>, String> {
        let mut editor = self
            .editor
            .take()
            .ok_or("the prompt's line editor was lost")?;
        if let Some(helper) = editor.helper_mut() {
            helper.set_cwd(cwd);
        }
        let (editor, line) = tokio::task::spawn_blocking(move || {
            let line = loop {
                match editor.readline("qft> ") {
                    Ok(line) => break Ok(Some(line)),
                    // Ctrl-C at the prompt clears the line, as in a shell.
                    Err(ReadlineError::Interrupted) => continue,
                    Err(ReadlineError::Eof) => break Ok(None),
                    Err(e) => break Err(e.to_string()),
                }
            };
            (editor, line)
        })
        .await
        .map_err(|e| e.to_string())?;
        self.editor = Some(editor);
        line
    }

    /// Adds a line to the history (a line starting with a space is not kept), and to the file.
    pub fn remember(&mut self, line: &str) {
        let Some(editor) = self.editor.as_mut() else {
            return;
        };
        if !editor.add_history_entry(line).unwrap_or(false) {
            return;
        }
        if let Some(path) = &self.file {
            if let Err(e) = editor.append_history(path) {
                eprintln!("qft: cannot save history in {}: {e}", path.display());
                self.file = None;
            }
        }
    }

    /// Drops what was typed ahead or pasted and not read yet (after Ctrl-C), by starting a new
    /// editor with the same history.
    pub fn forget_typed_ahead(&mut self) {
        let Some(old) = self.editor.take() else {
            return;
        };
        let cwd = old.helper().map(|h| h.cwd().to_owned()).unwrap_or_default();
        let kept: Vec<String> = old.history().iter().cloned().collect();
        // One editor holds the terminal at a time: the old one goes first.
        drop(old);
        match new_editor(QftHelper::new(self.names.clone(), &cwd)) {
            Ok(mut editor) => {
                match self.file.as_ref().filter(|p| p.exists()) {
                    // Everything remembered is in the file already.
                    Some(path) => {
                        let _ = editor.load_history(path);
                    }
                    None => {
                        for line in kept {
                            let _ = editor.add_history_entry(line);
                        }
                    }
                }
                self.editor = Some(editor);
            }
            Err(e) => eprintln!("qft: {e}"),
        }
    }
}

fn new_editor(helper: QftHelper) -> Result<Editor<QftHelper, FileHistory>, String> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_SIZE)
        .and_then(|c| c.history_ignore_dups(true))
        .map_err(|e| e.to_string())?
        .history_ignore_space(true)
        .auto_add_history(false)
        .build();
    let mut editor = Editor::<QftHelper, FileHistory>::with_config(config)
        .map_err(|e| format!("cannot start the prompt: {e}"))?;
    editor.set_helper(Some(helper));
    Ok(editor)
}
