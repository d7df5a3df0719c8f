//! Issue 15, item 8: resuming says what it does. A large partial is checked with something on
//! the screen, the result says where it resumed from, and Ctrl-C says the partial was kept.

use qft::client::resume::partial_path;
use qft::protocol::{read_frame, write_frame, Request, Response, Resume, MIN_CHUNK};

use crate::shell::{eventually, stderr, Shell};
use crate::support::random_bytes;

const MIB: usize = 1 << 20;

/// Bounds every wait for output; generous, because the machine is shared.
#[cfg(unix)]
const WAIT_MS: u64 = 30_000;

/// `qft connect` on a pseudo-terminal, at its first prompt.
#[cfg(unix)]
fn spawn_prompt(sh: &Shell) -> rexpect::session::PtySession {
    let mut cmd = sh.command(&[]);
    cmd.env("TERM", "xterm").env("NO_COLOR", "1");
    let mut p = rexpect::session::spawn_command(cmd, Some(WAIT_MS)).unwrap();
    p.exp_string("qft> ").unwrap();
    p
}

/// A current server that starts a 1 GiB download, sends `sent` bytes of it and then stalls
/// until the client gives up on the stream.
fn stalling_server(sent: usize) -> Shell {
    Shell::fake_current(move |request, mut send, mut recv| async move {
        let Request::ResumeDownload { .. } = request else {
            return;
        };
        let prefix = Response::Prefix {
            size: 1 << 30,
            modified: None,
            chunk: MIN_CHUNK,
            hashes: Vec::new(),
        };
        write_frame(&mut send, &prefix).await.unwrap();
        let _: Resume = read_frame(&mut recv).await.unwrap();
        send.write_all(&vec![7u8; sent]).await.unwrap();
        let _ = send.stopped().await;
    })
}

/// A 40 MiB partial was checked for seconds with nothing on the screen, and the result's rate
/// counted the 40 MiB that never moved, without a word about resuming.
#[cfg(unix)]
#[test]
fn regression_resuming_shows_the_check_and_says_where_it_resumed_from() {
    let sh = Shell::start();
    let data = random_bytes(48 * MIB);
    sh.served().put("big.bin", &data);
    let part = partial_path(&sh.local().join("big.bin"));
    std::fs::write(&part, &data[..40 * MIB]).unwrap();
    let mut p = spawn_prompt(&sh);
    p.send_line("get big.bin").unwrap();
    p.exp_string("checking 40.00 MiB already here").unwrap();
    p.exp_string("resumed from 40.00 MiB").unwrap();
    p.exp_string("qft> ").unwrap();
    p.send_line("logout").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(std::fs::read(sh.local().join("big.bin")).unwrap(), data);
    assert!(!part.exists());
}

/// Ctrl-C at the prompt said only "cancelled", and the README said the partial was removed:
/// it is kept, and the person is told where and that the same get resumes it.
#[cfg(unix)]
#[test]
fn regression_ctrl_c_at_the_prompt_says_the_partial_was_kept() {
    let sh = stalling_server(3 * MIB);
    let part = partial_path(&sh.local().join("big.bin"));
    let mut p = spawn_prompt(&sh);
    p.send_line("get big.bin").unwrap();
    eventually("3 MiB in the partial", || {
        std::fs::metadata(&part).is_ok_and(|m| m.len() == 3 * MIB as u64)
    });
    p.send_control('c').unwrap();
    p.exp_string("qft: cancelled; kept the 3.00 MiB received of big.bin")
        .unwrap();
    p.exp_string("for the same get to resume").unwrap();
    p.exp_string("qft> ").unwrap();
    p.send_line("logout").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 3 * MIB as u64);
}

/// The same for a one-shot `get` stopped by SIGINT (exit 130): it said nothing at all.
#[cfg(unix)]
#[test]
fn regression_an_interrupted_one_shot_get_says_its_partial_was_kept() {
    let sh = stalling_server(2 * MIB);
    let part = partial_path(&sh.local().join("big.bin"));
    let child = sh
        .command(&["get", "big.bin"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually("2 MiB in the partial", || {
        std::fs::metadata(&part).is_ok_and(|m| m.len() == 2 * MIB as u64)
    });
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cancelled; kept the 2.00 MiB received of big.bin"),
        "{err}"
    );
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 2 * MIB as u64);
}
