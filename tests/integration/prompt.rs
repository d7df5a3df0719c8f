//! The prompt driven as a person drives it, through a pseudo-terminal: completion of a remote
//! name, history recalled (also in a later session), Ctrl-C cancelling a transfer but not the
//! session. And the prompt's own commands (cd, pwd, lcd, lls, lpwd) from a script.

use crate::shell::{eventually, stderr, stdout, Shell};

/// Bounds every wait for output; generous, because the machine is shared.
#[cfg(unix)]
const WAIT_MS: u64 = 30_000;

/// `qft connect` on a pseudo-terminal, at its first prompt.
#[cfg(unix)]
fn spawn_prompt(sh: &Shell) -> rexpect::session::PtySession {
    let mut cmd = sh.command(&[]);
    // A terminal rustyline can drive; no colours to split the text being looked for.
    cmd.env("TERM", "xterm").env("NO_COLOR", "1");
    let mut p = rexpect::session::spawn_command(cmd, Some(WAIT_MS)).unwrap();
    p.exp_string("qft> ").unwrap();
    p
}

/// Types `keys` (a line ends with "\r", as the Enter key sends it).
#[cfg(unix)]
fn keys(p: &mut rexpect::session::PtySession, keys: &str) {
    p.send(keys).unwrap();
    p.flush().unwrap();
}

#[cfg(unix)]
fn exit_code(p: &rexpect::session::PtySession) -> i32 {
    use rexpect::process::WaitStatus;
    match p.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("{other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn tab_completes_a_remote_name_and_history_is_recalled_across_sessions() {
    let sh = Shell::start();
    sh.served()
        .put_all(&[("report-2026.bin", b"the report"), ("other.txt", b"x")]);
    let mut p = spawn_prompt(&sh);
    // "rep" + TAB completes from the server's listing, then Enter runs it.
    keys(&mut p, "get rep");
    keys(&mut p, "\t");
    p.exp_string("report-2026.bin").unwrap();
    keys(&mut p, "\r");
    p.exp_string("downloaded report-2026.bin").unwrap();
    assert_eq!(
        std::fs::read(sh.local().join("report-2026.bin")).unwrap(),
        b"the report"
    );
    // Ctrl-P recalls the line; running it again meets the file it made.
    p.exp_string("qft> ").unwrap();
    keys(&mut p, "\x10");
    keys(&mut p, "\r");
    p.exp_string("already exists; use --force").unwrap();
    p.exp_string("qft> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 1, "one command failed");

    let history = std::fs::read_to_string(sh.home().join("history")).unwrap();
    assert!(history.contains("get report-2026.bin"), "{history}");

    // A new session recalls it from the history file.
    std::fs::remove_file(sh.local().join("report-2026.bin")).unwrap();
    let mut p = spawn_prompt(&sh);
    keys(&mut p, "\x10");
    keys(&mut p, "\r");
    p.exp_string("downloaded report-2026.bin").unwrap();
    keys(&mut p, "logout\r");
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 0);
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_a_plain_transfer_removes_its_temp_and_the_session_goes_on() {
    use qft::protocol::{write_frame, Request, Response};
    use tokio::sync::mpsc;

    // An old server (no resuming: the plain exchange, whose temp file goes on cancel) that starts
    // sending a large file and then stalls, and reports when the client abandons the stream.
    // Against a current server the cancelled download keeps a hidden partial to resume from
    // (tests/integration/resume.rs).
    let (abandoned, heard) = mpsc::unbounded_channel::<()>();
    let sh = Shell::fake(move |request, mut send, _recv| {
        let abandoned = abandoned.clone();
        async move {
            if !matches!(request, Request::Download { .. }) {
                return;
            }
            let header = Response::FileHeader {
                size: 1 << 30,
                modified: None,
            };
            write_frame(&mut send, &header).await.unwrap();
            send.write_all(&[7u8; 64 * 1024]).await.unwrap();
            // Stalls here until the client stops reading.
            if send.stopped().await.is_ok() {
                let _ = abandoned.send(());
            }
        }
    });
    let mut p = spawn_prompt(&sh);
    keys(&mut p, "get big.bin\r");
    let parts = || {
        std::fs::read_dir(sh.local())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".qft-part")
            })
            .count()
    };
    eventually("the download to start", || parts() == 1);

    p.send_control('c').unwrap();
    p.exp_string("qft: cancelled").unwrap();
    p.exp_string("qft> ").unwrap();
    eventually("the partial file to be removed", || parts() == 0);
    assert!(!sh.local().join("big.bin").exists());
    let heard = std::sync::Mutex::new(heard);
    eventually("the server to see the stream abandoned", || {
        heard.lock().unwrap().try_recv().is_ok()
    });

    // The session is still there.
    keys(&mut p, "lpwd\r");
    p.exp_string(sh.local().canonicalize().unwrap().to_str().unwrap())
        .unwrap();
    p.exp_string("qft> ").unwrap();
    keys(&mut p, "logout\r");
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 1, "the cancelled command counts as failed");
}

#[test]
fn cd_pwd_and_the_local_commands_from_a_script() {
    let sh = Shell::start();
    sh.served().put_all(&[
        ("logs/2026/a.log", b"a"),
        ("logs/b.log", b"b"),
        ("top", b"t"),
    ]);
    std::fs::create_dir(sh.local().join("dl")).unwrap();
    let script = "cd logs\npwd\nget b.log\ncd 2026\nget ../b.log -o again.log\n\
                  lcd dl\nlpwd\nget a.log\nlls\ncd /\nls\ncd nowhere\npwd\ncd ../..\nput a.log\n";
    let out = sh.qft(&[]).write_stdin(script).output().unwrap();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "/logs", "{text}");
    assert!(
        lines[1].starts_with("downloaded\tlogs/b.log\tb.log\t1\t"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("downloaded\tlogs/b.log\tagain.log\t1\t"),
        "{text}"
    );
    assert!(lines[3].ends_with("/local/dl"), "{text}");
    assert!(
        lines[4].starts_with("downloaded\tlogs/2026/a.log\ta.log\t1\t"),
        "{text}"
    );
    assert!(lines[5].ends_with("\ta.log"), "lls: {text}");
    assert!(text.contains("\tlogs/\n"), "ls at the root again: {text}");
    assert_eq!(lines.iter().filter(|l| **l == "/").count(), 1, "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("uploaded\ta.log\ta.log\t1\t")),
        "put reads from the local directory lcd chose: {text}"
    );
    let err = stderr(&out);
    assert!(err.contains("'nowhere' does not exist"), "{err}");
    assert!(err.contains("'..'"), "cd above the root is refused: {err}");
    assert_eq!(out.status.code(), Some(1), "two commands failed");
    assert_eq!(std::fs::read(sh.local().join("b.log")).unwrap(), b"b");
    assert_eq!(std::fs::read(sh.local().join("again.log")).unwrap(), b"b");
    assert_eq!(std::fs::read(sh.local().join("dl/a.log")).unwrap(), b"a");
    assert_eq!(sh.served().read("a.log").unwrap(), b"a");
}
