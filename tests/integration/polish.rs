//! Issue 15, item 12: the rest of the error polish, as a person and a script meet it.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use qft::protocol::{write_frame, ErrorCode, Request, Response};

use crate::cli::{Served, World};
use crate::shell::{json_lines, stderr, Shell, BIN};

/// A server stopped (SIGTERM) under a prompt said it twice: "the transfer was interrupted: the
/// server closed the connection (bye)", then "the connection was closed: closed by peer: bye
/// (code 0)". Once now, and it says the server is shutting down.
#[test]
fn regression_a_server_shutdown_under_the_prompt_is_said_once() {
    let w = World::new();
    std::fs::write(w.path("served/a.txt"), b"a").unwrap();
    let server = Served::start(&w.path("server-home"), &w.path("served"), "127.0.0.1:0");
    let mut client = std::process::Command::new(BIN)
        .env("QFT_HOME", w.path("client-home"))
        .env_remove("RUST_LOG")
        .current_dir(w.path("local"))
        .args([
            "connect",
            &server.addr(),
            "--fingerprint",
            &server.fingerprint,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let mut stdout = BufReader::new(client.stdout.take().unwrap());
    stdin.write_all(b"ls\n").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.ends_with("\ta.txt\n"), "{line}");

    assert!(server.terminate().success());
    stdin.write_all(b"ls\n").unwrap();
    drop(stdin);
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("shutting down"), "{err}");
    assert!(!err.contains("code 0"), "{err}");
}

/// `--json ls` of the top directory failed with `"name":""`: an empty name is no name.
#[test]
fn regression_json_errors_have_no_empty_name() {
    let sh = Shell::fake(|request, mut send, _recv| async move {
        if let Request::List { .. } = request {
            let no = Response::Error {
                code: ErrorCode::PermissionDenied,
                message: "permission denied".into(),
            };
            let _ = write_frame(&mut send, &no).await;
            let _ = send.finish();
        }
    });
    let out = sh.qft(&["--json", "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let records = json_lines(&out);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["code"], "permission_denied");
    assert!(records[0].get("name").is_none(), "{}", records[0]);
}

/// `--json` get and put end with a `summary` record; delete ended with none.
#[test]
fn regression_json_delete_ends_with_a_summary() {
    let sh = Shell::start();
    sh.served().put_all(&[("a.log", b"a"), ("b.log", b"b")]);
    let out = sh.qft(&["--json", "rm", "*.log", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let records = json_lines(&out);
    let last = records.last().unwrap();
    assert_eq!(last["type"], "summary", "{records:?}");
    assert_eq!(last["files"], 2);
    assert_eq!(last["failed"], 1);
    assert_eq!(last["failures"][0], "nope");
    assert!(!sh.served().exists("a.log"));
    // Only programs get it: a person's and a pipe's output are as before.
    sh.served().put("c.log", b"c");
    let out = sh.qft(&["rm", "c.log"]).output().unwrap();
    assert_eq!(crate::shell::stdout(&out), "deleted\tc.log\n");
    assert_eq!(stderr(&out), "");
}

/// The trust error's JSON record had only the sentence: a script had to cut the key out of it.
#[test]
fn regression_json_trust_error_carries_the_fingerprint() {
    let sh = Shell::start();
    let out = assert_cmd::Command::new(BIN)
        .env("QFT_HOME", sh.home())
        .env_remove("RUST_LOG")
        .current_dir(sh.local())
        .args(["connect", &sh.addr.to_string(), "--json", "ls"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let records = json_lines(&out);
    assert_eq!(records[0]["code"], "trust", "{records:?}");
    assert_eq!(records[0]["fingerprint"], sh.fingerprint.to_string());
}
