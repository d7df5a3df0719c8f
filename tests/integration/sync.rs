//! Issue 14: `sync SRC DST` through the binary, both ways: what is sent, skipped, deleted and
//! left out, checked file by file; a second run sends nothing; `--dry-run` changes nothing;
//! `--delete` never leaves the destination; a sync killed midway finishes when run again
//! without sending a completed file twice.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::shell::{json_lines, read_tree, stderr, write_tree, Shell};
use crate::support::{mtime, random_bytes, set_mtime};

/// Gives the directory `path` the modification time `secs` (with touch(1), not qft's code).
fn touch_dir(path: &Path, secs: u64) {
    let status = std::process::Command::new("touch")
        .args(["-m", "-d", &format!("@{secs}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "touch {}", path.display());
}

/// Runs `qft connect ... --json sync ARGS` and returns its records; it must exit `code`.
fn sync(sh: &Shell, args: &[&str], code: i32) -> Vec<Value> {
    let mut all = vec!["--json", "sync"];
    all.extend_from_slice(args);
    let out = sh.qft(&all).output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
    json_lines(&out)
}

/// The names of the `sync` records with `action`, sorted.
fn acted(records: &[Value], action: &str) -> Vec<String> {
    let mut names: Vec<String> = records
        .iter()
        .filter(|r| r["type"] == "sync" && r["action"] == action)
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn summary(records: &[Value]) -> &Value {
    let last = records.last().expect("records");
    assert_eq!(last["type"], "sync_summary", "{records:?}");
    last
}

/// The start of a sync test: a local tree `src` and, after a first sync, the same on the
/// server under `dst`; then changes of every kind on the source side.
const BASE: &[(&str, &[u8])] = &[
    ("same.txt", b"unchanged"),
    ("content.txt", b"old content"),
    ("touched.txt", b"same bytes, new time"),
    ("gone.txt", b"deleted at the source"),
    ("sub/deep/same.bin", b"deep"),
    ("sub/gone/inner.txt", b"a directory deleted at the source"),
    ("cache.tmp", b"excluded, on both sides"),
];

#[test]
fn sync_up_sends_new_and_changed_files_skips_the_rest_and_deletes_what_is_gone() {
    let sh = Shell::start();
    let src = sh.local().join("photos");
    write_tree(&src, BASE);
    std::fs::create_dir_all(src.join("empty/dir")).unwrap();
    for (name, _) in BASE {
        set_mtime(&src.join(name), 1_600_000_000);
    }
    let first = sync(&sh, &["photos", ":backup"], 0);
    assert_eq!(summary(&first)["sent"], BASE.len());
    assert!(
        sh.served().is_dir("backup/empty/dir"),
        "empty directories are made"
    );
    assert_eq!(
        mtime(&sh.served().local_root().join("backup/sub/deep/same.bin")),
        1_600_000_000,
        "times are kept"
    );

    // Every kind of change.
    write_tree(
        &src,
        &[
            ("content.txt", b"new content, longer"),
            ("new/file.txt", b"new"),
        ],
    );
    set_mtime(&src.join("touched.txt"), 1_700_000_000);
    std::fs::remove_file(src.join("gone.txt")).unwrap();
    std::fs::remove_dir_all(src.join("sub/gone")).unwrap();
    write_tree(
        &src,
        &[
            ("cache.tmp", b"changed but excluded"),
            ("new.tmp", b"excluded"),
        ],
    );
    sh.served()
        .put("backup/server-only.tmp", b"excluded on the server: kept");
    let second = sync(
        &sh,
        &["--delete", "--exclude", "*.tmp", "photos", ":backup"],
        0,
    );
    assert_eq!(
        acted(&second, "send"),
        ["content.txt", "new/file.txt", "touched.txt"]
    );
    assert_eq!(acted(&second, "delete"), ["gone.txt", "sub/gone"]);
    assert_eq!(acted(&second, "mkdir"), ["new"]);
    assert_eq!(
        acted(&second, "skip"),
        ["same.txt", "sub/deep/same.bin"],
        "unchanged files are skipped, excluded ones not even looked at"
    );
    let s = summary(&second);
    assert_eq!(
        (&s["sent"], &s["skipped"], &s["deleted"], &s["failed"]),
        (&3.into(), &2.into(), &2.into(), &0.into())
    );
    assert_eq!(s["bytes"], 19 + 3 + 20);

    // The server holds the source, file by file, and what was excluded stays as it was.
    let served = sh.served().tree("backup");
    let mut expected = read_tree(&src);
    expected.retain(|(name, _)| !name.ends_with(".tmp"));
    expected.push(("cache.tmp".into(), b"excluded, on both sides".to_vec()));
    expected.push((
        "server-only.tmp".into(),
        b"excluded on the server: kept".to_vec(),
    ));
    expected.sort();
    assert_eq!(served, expected);
    for name in ["content.txt", "touched.txt", "new/file.txt", "same.txt"] {
        assert_eq!(
            mtime(&sh.served().local_root().join("backup").join(name)),
            mtime(&src.join(name)),
            "{name}"
        );
    }

    // Once more: nothing to send.
    let third = sync(
        &sh,
        &["--delete", "--exclude", "*.tmp", "photos", ":backup"],
        0,
    );
    let s = summary(&third);
    assert_eq!(
        (&s["sent"], &s["deleted"], &s["bytes"]),
        (&0.into(), &0.into(), &0.into())
    );
    assert_eq!(s["skipped"], 5);
}

#[test]
fn sync_down_makes_the_local_directory_hold_the_servers() {
    let sh = Shell::start();
    for (name, data) in BASE {
        sh.served().put(&format!("photos/{name}"), data);
        set_mtime(
            &sh.served().local_root().join("photos").join(name),
            1_600_000_000,
        );
    }
    sh.served().mkdir("photos/empty");
    // Directories keep their times too, as with rsync -t (set last, after the files in them).
    let dirs = ["empty", "sub", "sub/deep"];
    for (i, dir) in dirs.iter().enumerate() {
        touch_dir(
            &sh.served().local_root().join("photos").join(dir),
            1_500_000_000 + i as u64,
        );
    }
    let first = sync(&sh, &[":photos", "copy"], 0);
    assert_eq!(summary(&first)["sent"], BASE.len());
    let copy = sh.local().join("copy");
    assert!(copy.join("empty").is_dir());
    assert_eq!(mtime(&copy.join("sub/deep/same.bin")), 1_600_000_000);
    for (i, dir) in dirs.iter().enumerate() {
        assert_eq!(mtime(&copy.join(dir)), 1_500_000_000 + i as u64, "{dir}");
    }

    let root = sh.served().local_root().join("photos");
    sh.served()
        .put("photos/content.txt", b"new content, longer");
    set_mtime(&root.join("touched.txt"), 1_700_000_000);
    sh.served().remove("photos/gone.txt");
    std::fs::remove_dir_all(root.join("sub/gone")).unwrap();
    sh.served().put("photos/new/file.txt", b"new");
    sh.served().put("photos/cache.tmp", b"changed but excluded");
    write_tree(&copy, &[("local-only.tmp", b"excluded here: kept")]);
    // A download interrupted earlier left its partial: it is neither synced nor deleted.
    let part = qft::client::resume::partial_path(&copy.join("big.bin"));
    std::fs::write(&part, b"partial").unwrap();
    let second = sync(
        &sh,
        &["--delete", "--exclude", "*.tmp", ":photos", "copy"],
        0,
    );
    assert_eq!(
        acted(&second, "send"),
        ["content.txt", "new/file.txt", "touched.txt"]
    );
    assert_eq!(acted(&second, "delete"), ["gone.txt", "sub/gone"]);
    let mut expected = sh.served().tree("photos");
    expected.retain(|(name, _)| !name.ends_with(".tmp"));
    expected.push(("cache.tmp".into(), b"excluded, on both sides".to_vec()));
    expected.push(("local-only.tmp".into(), b"excluded here: kept".to_vec()));
    expected.push((
        part.file_name().unwrap().to_string_lossy().into_owned(),
        b"partial".to_vec(),
    ));
    expected.sort();
    assert_eq!(read_tree(&copy), expected);
    assert_eq!(mtime(&copy.join("touched.txt")), 1_700_000_000);

    let third = sync(
        &sh,
        &["--delete", "--exclude", "*.tmp", ":photos", "copy"],
        0,
    );
    assert_eq!(summary(&third)["sent"], 0);
    assert_eq!(summary(&third)["deleted"], 0);
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let sh = Shell::start();
    write_tree(&sh.local(), &[("d/new.txt", b"new"), ("d/sub/x", b"x")]);
    std::fs::create_dir_all(sh.local().join("d/empty")).unwrap();
    sh.served().put("remote/old.txt", b"old");
    let before = sh.served().tree("");
    let local_before = read_tree(&sh.local());
    let records = sync(&sh, &["-n", "--delete", "d", ":remote"], 0);
    assert_eq!(acted(&records, "send"), ["new.txt", "sub/x"]);
    assert_eq!(acted(&records, "delete"), ["old.txt"]);
    assert_eq!(acted(&records, "mkdir"), ["empty", "sub"]);
    assert!(records.iter().all(|r| r["dry_run"] == true), "{records:?}");
    assert_eq!(summary(&records)["sent"], 2);
    assert_eq!(sh.served().tree(""), before, "the server is untouched");
    assert_eq!(read_tree(&sh.local()), local_before);
    // The other way, into a directory that does not exist yet: still nothing made.
    let records = sync(&sh, &["--dry-run", ":remote", "fresh"], 0);
    assert_eq!(acted(&records, "send"), ["old.txt"]);
    assert!(!sh.local().join("fresh").exists());
}

#[test]
fn checksum_compares_contents_not_times() {
    let sh = Shell::start();
    write_tree(&sh.local(), &[("d/a", b"aaaa"), ("d/b", b"bbbb")]);
    sync(&sh, &["d", ":d"], 0);
    // What sync stored, the server knows the digest of without reading it (its cache): a
    // --checksum sync does not make it read unchanged files again.
    let out = sh.qft(&["--json", "stat", "d/b"]).output().unwrap();
    let expected = qft::transfer::hex(&<sha2::Sha256 as sha2::Digest>::digest(b"bbbb").into());
    assert_eq!(json_lines(&out)[0]["sha256"], expected.as_str());
    let root = sh.served().local_root();
    // Same size and time, other bytes: only --checksum sees it.
    std::fs::write(root.join("d/a"), b"AAAA").unwrap();
    set_mtime(&root.join("d/a"), mtime(&sh.local().join("d/a")));
    // Same bytes, another time: --checksum leaves it.
    set_mtime(&root.join("d/b"), 1_000_000_000);
    let plain = sync(&sh, &["-n", "d", ":d"], 0);
    assert_eq!(acted(&plain, "send"), ["b"]);
    let records = sync(&sh, &["--checksum", "d", ":d"], 0);
    assert_eq!(acted(&records, "send"), ["a"]);
    assert!(records.iter().any(|r| r["reason"] == "content differs"));
    assert_eq!(acted(&records, "skip"), ["b"]);
    assert_eq!(sh.served().read("d/a").unwrap(), b"aaaa");
}

#[cfg(unix)]
#[test]
fn delete_never_leaves_the_destination_through_a_link() {
    use std::os::unix::fs::symlink;
    let sh = Shell::start();
    // Local destination: a link in it to a directory elsewhere. --delete removes the link, and
    // nothing of what it leads to.
    let outside = sh.tmp.path().join("outside");
    write_tree(&outside, &[("precious.txt", b"never deleted")]);
    sh.served().put("src/kept.txt", b"k");
    let dst = sh.local().join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    symlink(&outside, dst.join("link")).unwrap();
    let records = sync(&sh, &["--delete", ":src", "dst"], 0);
    assert_eq!(acted(&records, "delete"), ["link"]);
    assert!(dst.join("link").symlink_metadata().is_err());
    assert_eq!(
        std::fs::read(outside.join("precious.txt")).unwrap(),
        b"never deleted"
    );

    // Remote destination: a link in it to a directory elsewhere in what is served.
    sh.served()
        .put("elsewhere/precious.txt", b"never deleted either");
    sh.served().mkdir("rdst");
    symlink(
        sh.served().local_root().join("elsewhere"),
        sh.served().local_root().join("rdst/link"),
    )
    .unwrap();
    write_tree(&sh.local(), &[("up/a.txt", b"a")]);
    let records = sync(&sh, &["--delete", "up", ":rdst"], 0);
    assert_eq!(acted(&records, "delete"), ["link"]);
    assert_eq!(
        sh.served().read("elsewhere/precious.txt").unwrap(),
        b"never deleted either"
    );
    assert_eq!(sh.served().names("rdst"), ["a.txt"]);
}

#[test]
fn delete_refuses_a_server_that_names_paths_outside_the_destination() {
    use qft::protocol::{write_frame, EntryInfo, EntryKind, Request, Response};
    let sh = Shell::fake(|request, mut send, _recv| async move {
        let entry = |name: &str, kind| EntryInfo {
            name: name.into(),
            kind,
            size: 1,
            modified: Some(1),
            mode: None,
            sha256: None,
        };
        let answer = match request {
            Request::Walk { .. } => Response::WalkPage {
                entries: vec![
                    entry("a", EntryKind::Dir),
                    entry("a/../../victim", EntryKind::File),
                ],
                last: true,
            },
            _ => Response::Error {
                code: qft::protocol::ErrorCode::Unsupported,
                message: "no".into(),
            },
        };
        let _ = write_frame(&mut send, &answer).await;
        let _ = send.finish();
    });
    let victim = sh.tmp.path().join("victim");
    std::fs::write(&victim, b"outside the destination").unwrap();
    write_tree(&sh.local(), &[("dst/victim", b"inside")]);
    let out = sh.qft(&["sync", "--delete", ":x", "dst"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("may not contain '.' or '..'"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"outside the destination");
    assert_eq!(
        std::fs::read(sh.local().join("dst/victim")).unwrap(),
        b"inside"
    );
}

#[test]
fn a_sync_killed_midway_finishes_when_run_again_and_sends_nothing_twice() {
    let sh = Shell::start();
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("f{i:02}.bin"), random_bytes(300_000 + i * 1000)))
        .collect();
    for (name, data) in &files {
        write_tree(&sh.local().join("big"), &[(name, data)]);
    }
    let mut child = sh
        .command(&["--json", "-j", "1", "sync", "big", ":big"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first: BTreeSet<String> = BTreeSet::new();
    while first.len() < 3 {
        let line = lines.next().expect("the sync reports files").unwrap();
        let record: Value = serde_json::from_str(&line).unwrap();
        if record["action"] == "send" {
            first.insert(record["name"].as_str().unwrap().to_owned());
        }
    }
    child.kill().unwrap(); // SIGKILL: no chance to tidy up
    let _ = child.wait();
    let records = sync(&sh, &["big", ":big"], 0);
    let again: BTreeSet<String> = acted(&records, "send").into_iter().collect();
    assert!(
        first.is_disjoint(&again),
        "sent twice: {:?}",
        first.intersection(&again).collect::<Vec<_>>()
    );
    assert!(!again.is_empty(), "the first run was stopped midway");
    for (name, data) in &files {
        assert_eq!(
            &sh.served().read(&format!("big/{name}")).unwrap(),
            data,
            "{name}"
        );
    }
    assert_eq!(summary(&records)["failed"], 0);
}

#[test]
fn sync_at_the_prompt_is_relative_to_cd_and_lcd() {
    let sh = Shell::start();
    sh.served().mkdir("top/inner");
    write_tree(&sh.local(), &[("here/x.txt", b"x")]);
    let out = sh
        .qft(&[])
        .write_stdin("cd top\nlcd here\nsync . :inner\nsync : ../back\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sh.served().read("top/inner/x.txt").unwrap(), b"x");
    assert_eq!(
        std::fs::read(sh.local().join("back/inner/x.txt")).unwrap(),
        b"x"
    );
}

#[test]
fn sync_usage_errors_say_what_is_wrong() {
    let sh = Shell::start();
    for (args, why) in [
        (&["sync", "a", "b"][..], "one remote side"),
        (&["sync", ":a", ":b"][..], "only one side"),
        (
            &["sync", "a", ":b", "--exclude", "[x"][..],
            "bad exclude pattern",
        ),
    ] {
        let out = sh.qft(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
    let out = sh.qft(&["sync", "missing", ":x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn sync_with_an_s3_server_keeps_times_so_a_second_sync_sends_nothing() {
    let config = crate::seaweed::config();
    let sh = Shell::start_over(|| crate::seaweed::open(&config));
    let src = sh.local().join("d");
    write_tree(
        &src,
        &[
            ("a.txt", b"a"),
            ("sub/b.bin", &random_bytes(2 << 20)),
            ("gone", b"g"),
        ],
    );
    std::fs::create_dir_all(src.join("empty")).unwrap();
    for name in ["a.txt", "sub/b.bin", "gone"] {
        set_mtime(&src.join(name), 1_600_000_000);
    }
    let first = sync(&sh, &["d", ":d"], 0);
    assert_eq!(summary(&first)["sent"], 3);
    let again = sync(&sh, &["d", ":d"], 0);
    assert_eq!(summary(&again)["sent"], 0, "{again:?}");
    assert_eq!(summary(&again)["skipped"], 3);
    let out = sh.qft(&["--json", "stat", "d/sub/b.bin"]).output().unwrap();
    assert_eq!(json_lines(&out)[0]["modified"], "2020-09-13T12:26:40Z");

    std::fs::remove_file(src.join("gone")).unwrap();
    write_tree(&src, &[("a.txt", b"changed")]);
    let third = sync(&sh, &["--delete", "d", ":d"], 0);
    assert_eq!(acted(&third, "send"), ["a.txt"]);
    assert_eq!(acted(&third, "delete"), ["gone"]);

    let back = sync(&sh, &[":d", "back"], 0);
    assert_eq!(summary(&back)["sent"], 2);
    let mut expected = read_tree(&src);
    expected.sort();
    assert_eq!(
        read_tree(&sh.local().join("back")),
        expected,
        "the empty directory too"
    );
    assert_eq!(mtime(&sh.local().join("back/sub/b.bin")), 1_600_000_000);

    // A directory cannot be renamed in one step on S3: refused, and said why.
    let out = sh.qft(&["mv", "d/sub", "d/moved"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot rename one in one step"),
        "{}",
        stderr(&out)
    );
    let out = sh.qft(&["mv", "d/a.txt", "d/empty/"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let records = sync(&sh, &["-n", ":d", "back"], 0);
    assert_eq!(
        acted(&records, "send"),
        ["empty/a.txt"],
        "renamed with its time"
    );
}
