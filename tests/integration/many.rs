//! Many files at once, directories and JSON, through the binary as scripts use it: patterns on
//! both sides, parallel transfers, failures that stop nothing, trees both ways, `--json`.

use std::sync::Arc;

use qft::protocol::{write_frame, Request, Response, Trailer};
use sha2::{Digest, Sha256};

use crate::shell::{json_lines, read_tree, stderr, stdout, write_tree, Shell, BIN};
use crate::support::random_bytes;

#[test]
fn put_and_get_many_files_with_patterns() {
    let sh = Shell::start();
    let a = random_bytes(700_000);
    let b = random_bytes(300_000);
    write_tree(
        &sh.local(),
        &[
            ("a.txt", &a),
            ("b.txt", &b),
            ("c.log", b"log"),
            (".h.txt", b"hidden"),
        ],
    );
    // Quoted as a script would: qft expands the pattern itself.
    let put = sh
        .qft(&["put", "*.txt", "c.log", "-j", "3"])
        .output()
        .unwrap();
    assert!(put.status.success(), "{}", stderr(&put));
    let mut uploaded: Vec<String> = stdout(&put)
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap().to_string())
        .collect();
    uploaded.sort();
    assert_eq!(uploaded, ["a.txt", "b.txt", "c.log"], "no hidden file");
    assert_eq!(sh.served().read("a.txt").unwrap(), a);
    assert_eq!(sh.served().read("b.txt").unwrap(), b);
    assert!(!sh.served().exists(".h.txt"));
    assert!(
        stderr(&put).starts_with("3 files, "),
        "a summary for a script goes to stderr: {}",
        stderr(&put)
    );

    // A remote pattern, matched against the listing; only the last part may hold wildcards.
    sh.served().put_all(&[
        ("logs/x1.log", b"1"),
        ("logs/x2.log", b"22"),
        ("logs/sub/x3.log", b"3"),
    ]);
    std::fs::create_dir(sh.local().join("out")).unwrap();
    let get = sh
        .qft(&["get", "logs/*", "*.txt", "-o", "out"])
        .output()
        .unwrap();
    assert!(get.status.success(), "{}", stderr(&get));
    assert_eq!(
        read_tree(&sh.local().join("out")),
        [
            ("a.txt".to_string(), a.clone()),
            ("b.txt".to_string(), b.clone()),
            ("x1.log".to_string(), b"1".to_vec()),
            ("x2.log".to_string(), b"22".to_vec())
        ]
    );
    assert!(stderr(&get).contains("4 files, "), "{}", stderr(&get));
    assert!(
        stdout(&get).contains("skipped\tlogs/sub\ta directory (use -r to copy it)"),
        "{}",
        stdout(&get)
    );

    // Patterns that match nothing are errors, on both sides.
    let none = sh.qft(&["get", "*.zip"]).output().unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(
        stderr(&none).contains("no remote file matches '*.zip'"),
        "{}",
        stderr(&none)
    );
    let none = sh.qft(&["put", "*.zip"]).output().unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(
        stderr(&none).contains("no local file matches '*.zip'"),
        "{}",
        stderr(&none)
    );
    let deep = sh.qft(&["get", "*/x1.log"]).output().unwrap();
    assert_eq!(deep.status.code(), Some(1));
    assert!(
        stderr(&deep).contains("only in the last part"),
        "{}",
        stderr(&deep)
    );

    // rm with a pattern deletes the matching files, never a directory.
    let rm = sh.qft(&["rm", "logs/*"]).output().unwrap();
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert!(!sh.served().exists("logs/x1.log"));
    assert!(sh.served().exists("logs/sub/x3.log"));
}

#[test]
fn one_failure_does_not_stop_the_others_and_the_summary_names_it() {
    let sh = Shell::start();
    sh.served().put_all(&[("a", b"aaa"), ("c", b"ccc")]);
    let out = sh.qft(&["get", "a", "missing", "c"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read(sh.local().join("a")).unwrap(), b"aaa");
    assert_eq!(std::fs::read(sh.local().join("c")).unwrap(), b"ccc");
    assert!(!sh.local().join("missing").exists());
    let err = stderr(&out);
    assert!(err.contains("qft: 'missing' does not exist"), "{err}");
    assert!(err.contains("2 files, 6 B in "), "{err}");
    assert!(err.contains("; 1 failed: missing"), "{err}");

    // Two remote files that would land on one local path: the second is refused, not written.
    sh.served()
        .put_all(&[("d1/same", b"first"), ("d2/same", b"second")]);
    let clash = sh.qft(&["get", "d1/same", "d2/same"]).output().unwrap();
    assert_eq!(clash.status.code(), Some(1));
    assert_eq!(std::fs::read(sh.local().join("same")).unwrap(), b"first");
    assert!(
        stderr(&clash).contains("would also receive 'd1/same'"),
        "{}",
        stderr(&clash)
    );
}

/// A fake server that answers no download until `n` of them are open at once: a client that
/// does not run them in parallel never gets an answer.
fn rendezvous_server(n: usize) -> Shell {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    Shell::fake(move |request, mut send, _recv| {
        let barrier = barrier.clone();
        async move {
            let Request::Download { name } = request else {
                return;
            };
            barrier.wait().await;
            let body = name.as_bytes().repeat(1000);
            let sha256 = Sha256::digest(&body).into();
            let header = Response::FileHeader {
                size: body.len() as u64,
                modified: None,
            };
            write_frame(&mut send, &header).await.unwrap();
            send.write_all(&body).await.unwrap();
            write_frame(&mut send, &Trailer { sha256 }).await.unwrap();
            send.finish().unwrap();
            let _ = send.stopped().await;
        }
    })
}

#[test]
fn transfers_run_in_parallel_on_one_connection() {
    let sh = rendezvous_server(3);
    let out = sh
        .qft(&["get", "one", "two", "three", "-j", "3"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["one", "two", "three"] {
        assert_eq!(
            std::fs::read(sh.local().join(name)).unwrap(),
            name.as_bytes().repeat(1000)
        );
    }
}

#[test]
fn trees_round_trip_byte_identical() {
    let sh = Shell::start();
    let big = random_bytes(1_500_000);
    let src = sh.local().join("src");
    write_tree(
        &src,
        &[
            ("top.bin", &big),
            ("a/one.txt", b"one"),
            ("a/b/c/deep.txt", b"deep"),
            ("a/b/empty.txt", b""),
            ("other dir/x y.txt", b"spaces"),
        ],
    );
    std::fs::create_dir(src.join("a/nothing")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/passwd", src.join("a/link")).unwrap();

    let put = sh.qft(&["put", "-r", "src", "--json"]).output().unwrap();
    assert!(put.status.success(), "{}", stderr(&put));
    let records = json_lines(&put);
    let skipped: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "skipped")
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        skipped.iter().any(|r| r.contains("empty directory")),
        "{skipped:?}"
    );
    #[cfg(unix)]
    assert!(skipped.iter().any(|r| r.contains("symlink")), "{skipped:?}");
    let summary = records.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["files"], 5);
    assert_eq!(summary["failed"], 0);
    assert!(
        !sh.served().exists("src/a/link"),
        "a symlink is not followed"
    );

    // Back again into another directory: every file byte-identical, nothing else.
    let get = sh
        .qft(&["get", "-r", "src", "-o", "back"])
        .output()
        .unwrap();
    assert!(get.status.success(), "{}", stderr(&get));
    let mut want: Vec<_> = read_tree(&src)
        .into_iter()
        .filter(|(name, _)| !name.ends_with("link") && name != "a/nothing/")
        .collect();
    want.sort();
    assert_eq!(read_tree(&sh.local().join("back/src")), want);
    assert_eq!(sh.served().tree("src"), want);

    // get -r of a file copies the file; of nothing, fails.
    let file = sh.qft(&["get", "-r", "src/a/one.txt"]).output().unwrap();
    assert!(file.status.success(), "{}", stderr(&file));
    assert_eq!(std::fs::read(sh.local().join("one.txt")).unwrap(), b"one");
    let missing = sh.qft(&["get", "-r", "nope"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    // Without -r a directory is refused with the way out.
    let dir = sh.qft(&["put", "src"]).output().unwrap();
    assert_eq!(dir.status.code(), Some(1));
    assert!(
        stderr(&dir).contains("is a directory; use -r"),
        "{}",
        stderr(&dir)
    );
}

#[cfg(unix)]
#[test]
fn a_tree_download_never_writes_through_a_local_symlink() {
    let sh = Shell::start();
    sh.served()
        .put_all(&[("t/ok.txt", b"ok"), ("t/sub/evil.txt", b"evil")]);
    let elsewhere = sh.tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::create_dir(sh.local().join("t")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, sh.local().join("t/sub")).unwrap();
    let out = sh.qft(&["get", "-r", "t", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let errors: Vec<_> = json_lines(&out)
        .into_iter()
        .filter(|r| r["type"] == "error")
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(|e| e["code"] == "unsafe_path"),
        "{errors:?}"
    );
    assert_eq!(std::fs::read(sh.local().join("t/ok.txt")).unwrap(), b"ok");
    assert!(
        std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "nothing written through the link"
    );
}

#[test]
fn json_lines_have_the_documented_fields() {
    let sh = Shell::start();
    sh.served().put_all(&[("f.txt", b"hello"), ("d/g", b"")]);
    let list = sh.qft(&["--json", "ls"]).output().unwrap();
    assert!(list.status.success());
    let entries = json_lines(&list);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["type"], "entry");
    assert_eq!(entries[0]["name"], "d");
    assert_eq!(entries[0]["kind"], "dir");
    assert_eq!(entries[1]["name"], "f.txt");
    assert_eq!(entries[1]["kind"], "file");
    assert_eq!(entries[1]["size"], 5);
    assert!(entries[1]["modified"].as_str().unwrap().ends_with('Z'));

    let get = sh
        .qft(&["get", "f.txt", "nope", "--json"])
        .output()
        .unwrap();
    assert_eq!(get.status.code(), Some(1));
    let records = json_lines(&get);
    let done = records.iter().find(|r| r["type"] == "downloaded").unwrap();
    assert_eq!(done["name"], "f.txt");
    assert_eq!(done["path"], "f.txt");
    assert_eq!(done["bytes"], 5);
    assert_eq!(
        done["sha256"],
        qft::transfer::hex(&Sha256::digest(b"hello").into())
    );
    assert!(done["seconds"].as_f64().unwrap() >= 0.0);
    let error = records.iter().find(|r| r["type"] == "error").unwrap();
    assert_eq!(error["code"], "not_found");
    assert_eq!(error["name"], "nope");
    assert_eq!(error["message"], "'nope' does not exist");
    let summary = records.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["files"], 1);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["bytes"], 5);
    assert_eq!(summary["failures"], serde_json::json!(["nope"]));

    let put = sh.qft(&["put", "f.txt", "--json"]).output().unwrap();
    let records = json_lines(&put);
    assert_eq!(records[0]["type"], "uploaded");
    assert_eq!(records[0]["name"], "f.txt");

    let rm = sh.qft(&["rm", "f.txt", "--json"]).output().unwrap();
    assert_eq!(
        json_lines(&rm)[0],
        serde_json::json!({"type": "deleted", "name": "f.txt"})
    );

    let help = sh.qft(&["help", "--json"]).output().unwrap();
    assert!(json_lines(&help).iter().all(|r| r["type"] == "command"));

    // A failure before any command (here: the wrong key) is a record too.
    let other = qft::tls::Identity::generate()
        .unwrap()
        .fingerprint()
        .to_string();
    let refused = assert_cmd::Command::new(BIN)
        .env("QFT_HOME", sh.home())
        .args([
            "connect",
            &sh.addr.to_string(),
            "--fingerprint",
            &other,
            "--json",
            "ls",
        ])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(json_lines(&refused)[0]["code"], "trust");
}

#[test]
fn completion_scripts_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = assert_cmd::Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains("qft") && script.contains("connect") && script.contains("json"),
            "{shell}"
        );
    }
    let bad = assert_cmd::Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn addresses_in_every_form() {
    // IPv6 in brackets.
    let v6 = Shell::start_on("[::1]:0");
    let out = v6.qft(&["ls"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // A host name, resolved.
    let v4 = Shell::start();
    let out = assert_cmd::Command::new(BIN)
        .env("QFT_HOME", v4.home())
        .args([
            "connect",
            &format!("localhost:{}", v4.addr.port()),
            "--fingerprint",
            &v4.fingerprint.to_string(),
            "ls",
        ])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}
