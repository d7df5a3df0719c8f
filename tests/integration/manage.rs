//! Issue 14: managing the server's names as sftp users do (mkdir, rmdir, mv, stat, sum, rm -r),
//! with and without the permissions they need, against old servers, and the metadata a
//! transfer keeps (`-p`, `--perms`).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use qft::client::{ClientError, Keep};
use qft::protocol::{EntryKind, ErrorCode};
use qft::server::Access;
use qft::tls::Identity;

use crate::shell::{json_lines, stderr, stdout, write_tree, Shell};
use crate::support::{mtime, no_progress, set_mtime, TestServer};

/// A time well in the past, to tell a kept time from the time of a copy.
const LONG_AGO: u64 = 1_500_000_000;

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn mkdir_rmdir_and_mv_through_the_binary() {
    let sh = Shell::start();
    sh.served().put("doc.txt", b"doc");
    let ok = |args: &[&str]| {
        let out = sh.qft(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    assert!(ok(&["mkdir", "-p", "a/b/c", "empty"]).contains("made\ta/b/c"));
    assert!(sh.served().is_dir("a/b/c") && sh.served().is_dir("empty"));
    // mv into a directory, then to a new name there.
    ok(&["mv", "doc.txt", "a/b"]);
    assert_eq!(sh.served().read("a/b/doc.txt").unwrap(), b"doc");
    ok(&["rename", "a/b/doc.txt", "a/b/renamed.txt"]);
    assert!(!sh.served().exists("a/b/doc.txt"));
    ok(&["rmdir", "empty", "a/b/c"]);
    assert!(!sh.served().exists("empty") && !sh.served().exists("a/b/c"));
    // What cannot be done says why, and changes nothing.
    for (args, why) in [
        (&["mkdir", "a"][..], "already exists"),
        (&["rmdir", "a"][..], "not empty"),
        (&["mv", "nothing", "x"][..], "does not exist"),
        (&["mkdir", "no/parent"][..], "does not exist"),
    ] {
        let out = sh.qft(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
    sh.served().put("other", b"other");
    let out = sh
        .qft(&["mv", "other", "a/b/renamed.txt"])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(sh.served().read("a/b/renamed.txt").unwrap(), b"doc");
    // At the prompt, names are relative to cd.
    let out = sh
        .qft(&["--json"])
        .write_stdin("cd a\nmkdir z\nmv b/renamed.txt z/\nrmdir b\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let kinds: Vec<String> = json_lines(&out)
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["type"],
                r["name"].as_str().or(r["to"].as_str()).unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "\"made\" a/z",
            "\"renamed\" a/z/renamed.txt",
            "\"removed\" a/b"
        ]
    );
    assert_eq!(sh.served().read("a/z/renamed.txt").unwrap(), b"doc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mkdir_mv_and_rmdir_need_their_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer, deleter) = (
        Identity::generate().unwrap(),
        Identity::generate().unwrap(),
        Identity::generate().unwrap(),
    );
    let list = dir.path().join("authorized");
    std::fs::write(
        &list,
        format!(
            "{} read\n{} read,write\n{} read,delete\n",
            reader.fingerprint(),
            writer.fingerprint(),
            deleter.fingerprint()
        ),
    )
    .unwrap();
    let server = TestServer::start_with_config(|c| c.access = Access::Authorized(list)).await;
    server.put("f", b"x");
    server.mkdir("d");
    let denied = |result: Result<(), ClientError>, word: &str| match result {
        Err(ClientError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::PermissionDenied, "{message}");
            assert!(
                message.contains(&format!("'{word}' permission")),
                "{message}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    };
    let reader = server.client_as(reader).await;
    denied(reader.make_dir("new", false).await, "write");
    denied(reader.rename("f", "g").await, "write");
    denied(reader.remove_dir("d").await, "delete");
    denied(reader.delete_tree("d").await.map(|_| ()), "delete");
    assert_eq!(
        reader.stat("f", true).await.unwrap().size,
        1,
        "read is enough to stat"
    );
    let writer = server.client_as(writer).await;
    denied(writer.remove_dir("d").await, "delete");
    denied(writer.delete_tree("d").await.map(|_| ()), "delete");
    writer.make_dir("new", false).await.unwrap();
    writer.rename("f", "new/g").await.unwrap();
    let deleter = server.client_as(deleter).await;
    denied(deleter.make_dir("other", false).await, "write");
    deleter.remove_dir("d").await.unwrap();
    assert_eq!(deleter.delete_tree("new").await.unwrap(), 1);
    assert_eq!(server.names(""), Vec::<String>::new());
}

#[test]
fn sum_prints_lines_that_sha256sum_checks() {
    let sh = Shell::start();
    let files: [(&str, &[u8]); 3] = [
        ("a.txt", b"alpha"),
        ("sub/b c.txt", b"bravo with a space"),
        ("sub/big.bin", &[7u8; 3 << 20]),
    ];
    sh.served().put_all(&files);
    let out = sh.qft(&["sum", "a.txt", "sub/*"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sums = stdout(&out);
    assert_eq!(sums.lines().count(), 3, "{sums}");
    let out = sh.qft(&["get", "-r", "a.txt", "sub"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(sh.local().join("SUMS"), &sums).unwrap();
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "SUMS"])
        .current_dir(sh.local())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stdout(&check));
    assert_eq!(
        stdout(&check).matches(": OK").count(),
        3,
        "{}",
        stdout(&check)
    );
    // A copy that differs fails the check: the lines are the files' real digests.
    std::fs::write(sh.local().join("sub/b c.txt"), b"bravo changed here").unwrap();
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "SUMS"])
        .current_dir(sh.local())
        .output()
        .unwrap();
    assert!(!check.status.success());
    // At the prompt, names stay as typed relative to cd, as sha256sum needs them.
    let out = sh
        .qft(&[])
        .write_stdin("cd sub\nsum big.bin\n")
        .output()
        .unwrap();
    assert!(stdout(&out).ends_with("  big.bin\n"), "{}", stdout(&out));
    let out = sh.qft(&["sum", "sub"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a file"), "{}", stderr(&out));
}

#[test]
fn stat_shows_what_the_server_knows_and_reads_the_digest_on_request() {
    let sh = Shell::start();
    sh.served().put("f.bin", b"content");
    set_mtime(&sh.served().local_root().join("f.bin"), LONG_AGO);
    let out = sh.qft(&["--json", "stat", "f.bin"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let record = &json_lines(&out)[0];
    assert_eq!(record["type"], "stat");
    assert_eq!(record["size"], 7);
    assert_eq!(record["modified"], "2017-07-14T02:40:00Z");
    assert!(
        record["sha256"].is_null(),
        "a local file's digest is not known without reading"
    );
    let out = sh
        .qft(&["--json", "stat", "--sha256", "f.bin"])
        .output()
        .unwrap();
    let expected = qft::transfer::hex(&<sha2::Sha256 as sha2::Digest>::digest(b"content").into());
    assert_eq!(json_lines(&out)[0]["sha256"], expected.as_str());
}

#[test]
fn rm_r_asks_at_a_terminal_and_needs_yes_elsewhere() {
    let sh = Shell::start();
    sh.served()
        .put_all(&[("tree/a", b"1"), ("tree/sub/b", b"2"), ("keep", b"3")]);
    // Nobody to ask: refused, nothing deleted.
    let out = sh.qft(&["rm", "-r", "tree"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs --yes"), "{}", stderr(&out));
    assert!(sh.served().exists("tree/sub/b"));
    let out = sh.qft(&[]).write_stdin("rm -r tree\n").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(sh.served().exists("tree/sub/b"));
    // With --yes it goes, and says how much went.
    let out = sh
        .qft(&["--json", "rm", "-r", "--yes", "tree"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let record = &json_lines(&out)[0];
    assert_eq!(
        (&record["type"], &record["files"]),
        (&"deleted".into(), &2.into())
    );
    assert!(!sh.served().exists("tree"));
    assert_eq!(sh.served().read("keep").unwrap(), b"3");
}

#[cfg(unix)]
#[test]
fn rm_r_at_a_terminal_deletes_only_after_a_yes() {
    let sh = Shell::start();
    sh.served().put_all(&[("tree/a", b"1")]);
    let mut cmd = sh.command(&[]);
    cmd.env("TERM", "xterm").env("NO_COLOR", "1");
    let mut p = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
    p.exp_string("qft> ").unwrap();
    p.send_line("rm -r tree").unwrap();
    p.exp_string("with everything in it? [y/N]").unwrap();
    p.send_line("n").unwrap();
    p.exp_string("kept tree").unwrap();
    assert!(sh.served().exists("tree/a"));
    p.exp_string("qft> ").unwrap();
    p.send_line("rm -r tree").unwrap();
    p.exp_string("[y/N]").unwrap();
    p.send_line("y").unwrap();
    p.exp_string("deleted tree (1 file)").unwrap();
    assert!(!sh.served().exists("tree"));
    p.exp_string("qft> ").unwrap();
    p.send_line("logout").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn an_old_server_is_named_for_the_command_it_lacks() {
    use qft::protocol::{write_frame, Request, Response};
    // An old server: it knows nothing of this issue's requests and says so.
    let sh = Shell::fake(|request, mut send, _recv| async move {
        let known = matches!(request, Request::List { .. } | Request::Help);
        let answer = match known {
            true => Response::ListPage {
                entries: Vec::new(),
                last: true,
            },
            false => Response::Error {
                code: ErrorCode::Unsupported,
                message: "this server does not know that command".into(),
            },
        };
        let _ = write_frame(&mut send, &answer).await;
        let _ = send.finish();
    });
    write_tree(&sh.local(), &[("d/f", b"x")]);
    for (args, lacks) in [
        (&["mkdir", "x"][..], "does not support MKDIR"),
        (&["rmdir", "x"][..], "does not support RMDIR"),
        (&["mv", "a", "b"][..], "does not support RENAME"),
        (&["stat", "a"][..], "does not support STAT"),
        (&["sum", "a"][..], "does not support STAT"),
        (&["rm", "-r", "-y", "a"][..], "does not support DELETE -r"),
        (&["sync", "d", ":d"][..], "does not support WALK"),
        (&["put", "-p", "d/f"][..], "does not support keeping times"),
    ] {
        let out = sh.qft(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(lacks), "{args:?}: {}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtime_survives_a_round_trip_with_p_and_only_with_it() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    for (name, size) in [("small", 10usize), ("big", 3 << 20)] {
        let path = local.path().join(name);
        std::fs::write(&path, vec![1u8; size]).unwrap();
        set_mtime(&path, LONG_AGO);
        let keep = Keep {
            time: true,
            perms: false,
        };
        client
            .upload_keeping(&path, name, keep, &no_progress())
            .await
            .unwrap();
        assert_eq!(
            mtime(&server.local_root().join(name)),
            LONG_AGO,
            "{name} up"
        );
        let listed = client.list("").await.unwrap();
        let entry = listed.iter().find(|e| e.name == name).unwrap();
        assert_eq!(entry.modified, Some(LONG_AGO), "LIST shows the kept time");
        let back = local.path().join(format!("{name}.back"));
        client
            .download_keeping(name, &back, false, keep, &no_progress())
            .await
            .unwrap();
        assert_eq!(mtime(&back), LONG_AGO, "{name} down");
        // Without -p a copy has the time it was made, as before.
        client.upload(&path, "plain", &no_progress()).await.unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(mtime(&server.local_root().join("plain")) + 60 > now);
        let plain = local.path().join(format!("{name}.plain"));
        client
            .download(name, &plain, false, &no_progress())
            .await
            .unwrap();
        assert!(mtime(&plain) + 60 > now);
    }
}

#[test]
fn put_and_get_p_keep_the_time_as_scp_does() {
    let sh = Shell::start();
    let path = sh.local().join("p.txt");
    std::fs::write(&path, b"p").unwrap();
    set_mtime(&path, LONG_AGO);
    let out = sh.qft(&["put", "-p", "p.txt"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mtime(&sh.served().local_root().join("p.txt")), LONG_AGO);
    let out = sh
        .qft(&["get", "-p", "p.txt", "-o", "copy.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mtime(&sh.local().join("copy.txt")), LONG_AGO);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perms_are_kept_on_request_and_never_setuid() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start().await;
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let path = local.path().join("tool");
    std::fs::write(&path, b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o4751)).unwrap();
    let perms = Keep {
        time: false,
        perms: true,
    };
    client
        .upload_keeping(&path, "tool", perms, &no_progress())
        .await
        .unwrap();
    assert_eq!(
        mode(&server.local_root().join("tool")),
        0o751,
        "the bits, never setuid"
    );
    client.upload(&path, "plain", &no_progress()).await.unwrap();
    assert_ne!(
        mode(&server.local_root().join("plain")),
        0o751,
        "only on request"
    );
    let info = client.stat("tool", false).await.unwrap();
    assert_eq!((info.kind, info.mode), (EntryKind::File, Some(0o751)));
    std::fs::set_permissions(
        server.local_root().join("tool"),
        std::fs::Permissions::from_mode(0o4700),
    )
    .unwrap();
    let back = local.path().join("back");
    client
        .download_keeping("tool", &back, false, perms, &no_progress())
        .await
        .unwrap();
    assert_eq!(mode(&back), 0o700);
}
