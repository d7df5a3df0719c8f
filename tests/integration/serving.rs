//! `qft serve` as an operator meets it: regression tests named after what went wrong.

use std::path::PathBuf;

use crate::cli::{stderr, Served, World};

/// This world's client fingerprint (`qft id`), and an authorized-clients file holding `lines`,
/// in which `{fp}` stands for it.
fn authorized(w: &World, lines: &str) -> (String, PathBuf) {
    let id = w.qft().arg("id").output().unwrap();
    let fingerprint = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let list = w.path("authorized");
    std::fs::write(&list, lines.replace("{fp}", &fingerprint)).unwrap();
    (fingerprint, list)
}

/// The README lines its columns up with runs of blanks; that layout once made every line invalid
/// and the server started admitting nobody, saying so only in its log.
#[test]
fn the_readmes_authorized_clients_layout_admits_the_clients_it_lists() {
    let w = World::new();
    let (_, list) = authorized(
        &w,
        "# fingerprint                 permissions         who\n{fp}   read,write,delete   Ann's laptop\n",
    );
    let server = Served::start_with(
        &w.path("server-home"),
        &w.path("served"),
        "127.0.0.1:0",
        &["--authorized-clients", list.to_str().unwrap()],
    );
    std::fs::write(w.path("local/up"), b"data").unwrap();
    let put = w.connect(&server, &["put", "up"]).output().unwrap();
    assert!(put.status.success(), "{}", stderr(&put));
    assert_eq!(std::fs::read(w.path("served/up")).unwrap(), b"data");
}

/// A list with a line that grants nothing (a typo in a permission, a cut fingerprint) must not
/// start a server that silently admits fewer clients than listed.
#[test]
fn a_server_whose_authorized_clients_list_has_a_bad_line_refuses_to_start_and_names_it() {
    let w = World::new();
    let id = w.qft().arg("id").output().unwrap();
    let fingerprint = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let list = w.path("authorized");
    std::fs::write(
        &list,
        format!("{fingerprint} read\n{fingerprint}x rwx Bob\n"),
    )
    .unwrap();
    let out = w
        .qft()
        .env("QFT_HOME", w.path("server-home"))
        .args(["serve", w.path("served").to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--authorized-clients"])
        .arg(&list)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("line 2"), "names the line: {err}");
    assert!(
        err.contains(list.to_str().unwrap()),
        "names the file: {err}"
    );
    assert!(!err.contains("line 1"), "{err}");
}

/// `--timeout 0` was accepted and meant "give up at once".
#[test]
fn a_zero_connect_timeout_is_a_usage_error() {
    let w = World::new();
    let out = w
        .qft()
        .args(["connect", "127.0.0.1:9", "--timeout", "0", "ls"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// A port already taken said "Address already in use (os error 98): Address already in use
/// (os error 98)".
#[test]
fn a_port_in_use_is_said_once_without_os_error_numbers() {
    let w = World::new();
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = w
        .qft()
        .env("QFT_HOME", w.path("server-home"))
        .args([
            "serve",
            w.path("served").to_str().unwrap(),
            "--listen",
            &addr,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.matches("in use").count(), 1, "{err}");
    assert!(!err.contains("os error"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A local file that is not there said "No such file or directory (os error 2)"; a QFT_HOME
/// that is a file said "File exists (os error 17)".
#[test]
fn local_errors_are_one_plain_sentence() {
    let w = World::new();
    let server = Served::start(&w.path("server-home"), &w.path("served"), "127.0.0.1:0");
    let put = w
        .connect(&server, &["put", "not-here.txt"])
        .output()
        .unwrap();
    assert_eq!(put.status.code(), Some(1));
    let err = stderr(&put);
    assert!(err.contains("not-here.txt"), "{err}");
    assert!(!err.contains("os error"), "{err}");

    std::fs::write(w.path("home-file"), b"").unwrap();
    let id = w
        .qft()
        .env("QFT_HOME", w.path("home-file"))
        .arg("id")
        .output()
        .unwrap();
    assert_eq!(id.status.code(), Some(1));
    let err = stderr(&id);
    assert!(err.contains("is not a directory"), "{err}");
    assert!(!err.contains("os error"), "{err}");
}

/// `user@host`, the ssh habit, said only "cannot resolve".
#[test]
fn user_at_host_says_qft_has_no_user_names() {
    let w = World::new();
    let out = w
        .qft()
        .args(["connect", "ann@127.0.0.1:9", "ls"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no user names"), "{err}");
    assert!(err.contains("'127.0.0.1:9'"), "{err}");
}

/// A server whose key was deliberately replaced could only be trusted again by editing
/// known_hosts by hand; `qft known-hosts --forget` does it, as `ssh-keygen -R`.
#[test]
fn known_hosts_forget_lets_a_replaced_server_be_trusted_again() {
    let w = World::new();
    let server = Served::start(&w.path("server-home"), &w.path("served"), "127.0.0.1:0");
    let host = server.addr();
    let stale = qft::tls::Identity::generate().unwrap().fingerprint();
    std::fs::write(
        w.path("client-home/known_hosts"),
        format!("other:4433 {stale}\n{host} {stale}\n"),
    )
    .unwrap();
    let refused = w
        .qft()
        .args(["connect", &host, "--accept-new", "ls"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(
        err.contains(&format!("qft known-hosts --forget {host}")),
        "{err}"
    );

    let forget = w
        .qft()
        .args(["known-hosts", "--forget", &host])
        .output()
        .unwrap();
    assert!(forget.status.success(), "{}", stderr(&forget));
    let kept = std::fs::read_to_string(w.path("client-home/known_hosts")).unwrap();
    assert_eq!(
        kept,
        format!("other:4433 {stale}\n"),
        "other hosts are kept"
    );
    let again = w
        .qft()
        .args(["known-hosts", "--forget", &host])
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "nothing left to forget is said"
    );

    let trusted = w
        .qft()
        .args(["connect", &host, "--accept-new", "ls"])
        .output()
        .unwrap();
    assert!(trusted.status.success(), "{}", stderr(&trusted));
    let list = w.qft().arg("known-hosts").output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains(&server.fingerprint));
}
