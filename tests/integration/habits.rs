//! Issue 15: the prompt and the command line as people really use them: re-running a copy,
//! choosing where files go, quiet runs, help, and the small habits sftp users bring (`ls -l`,
//! `~`, `!cmd`). Each test is named after the bug it keeps fixed, and goes through the binary.

use crate::shell::{json_lines, stderr, stdout, write_tree, Shell};
use crate::support::random_bytes;

/// Item 4: re-running `get -r` after an interruption resumes what was partial and reports the
/// files already complete as skipped-identical (same size and SHA-256), not failed; a local
/// file that differs is still never replaced without `-f`, and `-f` replaces it.
#[test]
fn regression_a_tree_rerun_resumes_partials_and_skips_identical_files() {
    let sh = Shell::start();
    let mib = 1 << 20;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("photos/small.jpg", random_bytes(10_000)),
        ("photos/big.jpg", random_bytes(2 * mib + mib / 2)),
        ("photos/exact.jpg", random_bytes(2 * mib)),
        ("photos/part.jpg", random_bytes(3 * mib)),
        ("photos/new.jpg", random_bytes(5_000)),
        ("photos/head.jpg", random_bytes(2 * mib + 7)),
        ("photos/tail.jpg", random_bytes(2 * mib + 7)),
        ("photos/2026/deep.jpg", random_bytes(1_500_000)),
    ];
    for (name, data) in &files {
        sh.served().put(name, data);
    }
    let local = sh.local();
    let data = |name: &str| files.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    // What an interrupted run leaves: some files complete, one partial, one not started...
    for name in [
        "photos/small.jpg",
        "photos/big.jpg",
        "photos/exact.jpg",
        "photos/2026/deep.jpg",
    ] {
        write_tree(&local, &[(name, &data(name))]);
    }
    let part = qft::client::resume::partial_path(&local.join("photos/part.jpg"));
    std::fs::write(&part, &data("photos/part.jpg")[..mib + mib / 2]).unwrap();
    // ...and two local files of the same size that are not the server's: one differs in its
    // first piece, one only in its last bytes.
    let mut head = data("photos/head.jpg");
    head[10] ^= 1;
    let mut tail = data("photos/tail.jpg");
    *tail.last_mut().unwrap() ^= 1;
    write_tree(
        &local,
        &[("photos/head.jpg", &head), ("photos/tail.jpg", &tail)],
    );

    let out = sh.qft(&["--json", "get", "-r", "photos"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let records = json_lines(&out);
    let names = |kind: &str| {
        let mut names: Vec<String> = records
            .iter()
            .filter(|r| r["type"] == kind)
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names("skipped"),
        [
            "photos/2026/deep.jpg",
            "photos/big.jpg",
            "photos/exact.jpg",
            "photos/small.jpg"
        ],
        "{records:?}"
    );
    assert_eq!(names("downloaded"), ["photos/new.jpg", "photos/part.jpg"]);
    assert_eq!(names("error"), ["photos/head.jpg", "photos/tail.jpg"]);
    assert!(
        records
            .iter()
            .filter(|r| r["type"] == "skipped")
            .all(|r| r["reason"].as_str().unwrap().contains("identical")),
        "{records:?}"
    );
    let summary = records.last().unwrap();
    assert_eq!(
        (&summary["files"], &summary["skipped"], &summary["failed"]),
        (&2.into(), &4.into(), &2.into())
    );
    assert!(!part.exists(), "the partial was resumed and put in place");
    assert_eq!(
        std::fs::read(local.join("photos/part.jpg")).unwrap(),
        data("photos/part.jpg")
    );
    assert_eq!(
        std::fs::read(local.join("photos/head.jpg")).unwrap(),
        head,
        "kept"
    );
    assert_eq!(
        std::fs::read(local.join("photos/tail.jpg")).unwrap(),
        tail,
        "kept"
    );
    let err = stderr(&out);
    assert!(err.contains("already exists; use --force"), "{err}");

    // The advice works, as a one-shot option and at the prompt.
    let out = sh
        .qft(&[])
        .write_stdin("get -rf photos\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for (name, data) in &files {
        assert_eq!(&std::fs::read(local.join(name)).unwrap(), data, "{name}");
    }
    std::fs::write(local.join("photos/new.jpg"), b"changed here").unwrap();
    let out = sh
        .qft(&["get", "photos/new.jpg", "--force", "-o", "photos/"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(local.join("photos/new.jpg")).unwrap(),
        data("photos/new.jpg")
    );
    // And a plain re-run is now all skipped, exit 0.
    let out = sh.qft(&["get", "-r", "photos"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.starts_with("skipped\t"))
            .count(),
        8
    );
}

/// Item 4, at the prompt: `get -f NAME` and `get --force NAME` were rejected ("GET has no
/// option"), though every refusal says "use --force".
#[test]
fn regression_force_is_an_option_of_get_at_the_prompt() {
    let sh = Shell::start();
    sh.served().put("a.txt", b"server's");
    std::fs::write(sh.local().join("a.txt"), b"mine").unwrap();
    let out = sh
        .qft(&[])
        .write_stdin("-get a.txt\nget -f a.txt\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists; use --force"));
    assert_eq!(
        std::fs::read(sh.local().join("a.txt")).unwrap(),
        b"server's"
    );
    std::fs::write(sh.local().join("a.txt"), b"mine again").unwrap();
    let out = sh
        .qft(&[])
        .write_stdin("get --force a.txt\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(sh.local().join("a.txt")).unwrap(),
        b"server's"
    );
    let bad = sh.qft(&[]).write_stdin("put -f a.txt\n").output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("PUT has no option '-f'"),
        "{}",
        stderr(&bad)
    );
}

/// Item 6: `put s1.txt docs/` read `docs/` as a local path; put had no way to name a remote
/// directory. Now `-o REMOTE` and a last `DIR/` argument do, read as `get -o` reads its path.
#[test]
fn regression_put_can_target_a_remote_directory() {
    let sh = Shell::start();
    sh.served().put("docs/old.txt", b"o");
    for (name, data) in [("s1.txt", "one"), ("s2.txt", "two"), ("s3.txt", "three")] {
        std::fs::write(sh.local().join(name), data).unwrap();
    }
    let put = |args: &[&str]| {
        let out = sh.qft(&[&["put"], args].concat()).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    // A trailing remote directory (made if missing), several files into -o, one file renamed.
    let text = put(&["s1.txt", "docs/"]);
    assert!(
        text.starts_with("uploaded\tdocs/s1.txt\ts1.txt\t3\t"),
        "{text}"
    );
    put(&["s1.txt", "s2.txt", "-o", "new/sub/"]);
    put(&["s3.txt", "-o", "docs/renamed.txt"]);
    // One file and an existing remote directory without a slash: into it, as get -o does.
    put(&["s2.txt", "-o", "docs"]);
    assert_eq!(
        sh.served().names("docs"),
        ["old.txt", "renamed.txt", "s1.txt", "s2.txt"]
    );
    assert_eq!(sh.served().names("new/sub"), ["s1.txt", "s2.txt"]);
    assert_eq!(sh.served().read("docs/renamed.txt").unwrap(), b"three");

    // At the prompt -o is relative to cd; a last argument that exists locally stays local.
    std::fs::create_dir(sh.local().join("here")).unwrap();
    std::fs::write(sh.local().join("here/h.txt"), b"h").unwrap();
    let out = sh
        .qft(&[])
        .write_stdin("cd docs\nput s3.txt -o deeper/\nput -r s1.txt here/\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sh.served().read("docs/deeper/s3.txt").unwrap(), b"three");
    assert_eq!(sh.served().read("docs/here/h.txt").unwrap(), b"h");
}

/// Item 7: `get hello.txt -o nodir/sub/h.txt` failed with
/// `nodir/sub/.h.txt.qft-part: No such file or directory`: the parents are made (as `get -r`
/// makes them), and no error names the hidden partial.
#[test]
fn regression_get_o_makes_parent_directories_and_never_shows_the_partial() {
    let sh = Shell::start();
    sh.served().put("hello.txt", b"hello");
    let out = sh
        .qft(&["get", "hello.txt", "-o", "nodir/sub/h.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(sh.local().join("nodir/sub/h.txt")).unwrap(),
        b"hello"
    );
    let out = sh
        .qft(&["get", "hello.txt", "-o", "other/dir/"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(sh.local().join("other/dir/hello.txt")).unwrap(),
        b"hello"
    );

    // Something in the way of the partial: the error is about the file asked for.
    let blocked = sh.local().join("x/h2.txt");
    std::fs::create_dir_all(qft::client::resume::partial_path(&blocked)).unwrap();
    let out = sh
        .qft(&["get", "hello.txt", "-o", "x/h2.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("x/h2.txt"), "{err}");
    assert!(!err.contains("qft-part"), "{err}");
}

/// `get f.bin /tmp/f.bin` (sftp's `get REMOTE LOCAL`, scp's last argument) downloaded f.bin into
/// the current directory and then failed on "/tmp/f.bin" as a server name. A last argument that
/// can only be a local path is where the files go, one-shot and at the prompt.
#[test]
fn regression_get_takes_a_last_local_path_as_sftp_does() {
    let sh = Shell::start();
    sh.served().put("f.bin", b"eff");
    sh.served().put("g.bin", b"gee");
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("renamed.bin");
    let out = sh
        .qft(&["get", "f.bin", target.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&target).unwrap(), b"eff");
    assert!(
        !sh.local().join("f.bin").exists(),
        "nothing lands in the current directory"
    );

    // Two names into ./sub/ (made if missing), and at the prompt into "..".
    let out = sh
        .qft(&["get", "f.bin", "g.bin", "./sub/"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(sh.local().join("sub/g.bin")).unwrap(), b"gee");
    let out = sh
        .qft(&[])
        .write_stdin("lcd sub\nget -f g.bin ..\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(sh.local().join("g.bin")).unwrap(), b"gee");

    // A last argument that could be a server name still is one.
    let out = sh.qft(&["get", "f.bin", "nope.bin"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nope.bin"), "{}", stderr(&out));
}

/// Item 9: `-q` still printed every per-file line; quiet means errors only.
#[test]
fn regression_quiet_prints_errors_only() {
    let sh = Shell::start();
    sh.served().put_all(&[("a", b"a"), ("b", b"b")]);
    let out = sh.qft(&["-q", "get", "a", "b"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!((stdout(&out).as_str(), stderr(&out).as_str()), ("", ""));
    let out = sh.qft(&["get", "a", "nope", "--quiet"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out).trim(), "qft: 'nope' does not exist");
    // Deleting and uploading are as quiet; what was asked to be shown is still shown.
    let out = sh
        .qft(&["-q"])
        .write_stdin("put a\nrm a\nls\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>().len(),
        1,
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).ends_with("\tb\n"), "{}", stdout(&out));
    // --json keeps its records: they are a program's contract.
    let out = sh
        .qft(&["-q", "--json", "get", "-f", "b"])
        .output()
        .unwrap();
    assert_eq!(json_lines(&out).len(), 2);
}

/// Item 10: HELP at the prompt listed only the server's commands. It also lists the prompt's
/// own (cd, pwd, lcd, lls, lpwd, !cmd), the options, globs and quoting.
#[test]
fn regression_help_at_the_prompt_lists_the_clients_own_commands_and_options() {
    let sh = Shell::start();
    let out = sh.qft(&[]).write_stdin("help\n").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "DOWNLOAD",
        "cd [DIR]",
        "pwd",
        "lcd [DIR]",
        "lls",
        "lpwd",
        "!COMMAND",
        "-r ",
        "-o PATH",
        "-o REMOTE",
        "-f ",
        "Wildcards",
        "Quote names",
        "~",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    let json = sh.qft(&["--json"]).write_stdin("help\n").output().unwrap();
    assert!(json_lines(&json).iter().any(|r| r["name"] == "lcd"));
}

/// Item 10: the README's prompt example (`cd photos` then `get -r 2026 '*.jpg'`) fetched all
/// of 2026/ and then failed on the pattern. Every line of the example, run as written, works.
#[test]
fn regression_the_readmes_prompt_example_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let example = readme.split("### The prompt").nth(1).unwrap();
    let example = example.split("```").nth(1).unwrap();
    let script: String = example
        .lines()
        .filter_map(|l| l.strip_prefix("qft> "))
        .filter(|l| !l.contains("<TAB>"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(script.contains("cd photos"), "{script}");
    let sh = Shell::start();
    sh.served().put_all(&[
        ("report.pdf", b"report"),
        ("photos/2026/a.jpg", b"a"),
        ("photos/2026/b.png", b"b"),
        ("photos/2025/c.jpg", b"c"),
        ("photos/2025/d.txt", b"d"),
    ]);
    let out = sh.qft(&[]).write_stdin(script.clone()).output().unwrap();
    assert!(out.status.success(), "{script}\n{}", stderr(&out));
}

/// Item 13: `ls -l`, `ls FILE`, `lls -l`, `lls FILE` as sftp users type them.
#[test]
fn regression_ls_and_lls_take_l_and_a_file() {
    let sh = Shell::start();
    sh.served()
        .put_all(&[("d/f.txt", b"12345"), ("d/g.log", b"1"), ("top.txt", b"t")]);
    std::fs::write(sh.local().join("mine.txt"), b"abc").unwrap();
    let out = sh
        .qft(&[])
        .write_stdin("ls -l\nls d/f.txt\nls -l 'd/*.log'\nlls -l\nlls mine.txt\ncd d\nls f.txt\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with("\td/") && lines[1].ends_with("\ttop.txt"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("5\t") && lines[2].ends_with("\tf.txt"),
        "{text}"
    );
    assert!(
        lines[3].starts_with("1\t") && lines[3].ends_with("\tg.log"),
        "{text}"
    );
    assert!(
        lines[4].starts_with("3\t") && lines[4].ends_with("\tmine.txt"),
        "lls -l: {text}"
    );
    assert!(
        lines[5].starts_with("3\t") && lines[5].ends_with("\tmine.txt"),
        "lls FILE: {text}"
    );
    assert!(
        lines[6].starts_with("5\t") && lines[6].ends_with("\tf.txt"),
        "{text}"
    );
    assert_eq!(lines.len(), 7, "{text}");
    let out = sh.qft(&["ls", "d/nope.txt"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// Item 13: `~` in `lcd` and in local paths (`put ~/x`, `get -o ~/y`, `lls ~`).
#[test]
fn regression_a_tilde_in_local_paths_is_home() {
    let sh = Shell::start();
    sh.served().put("s.txt", b"s");
    let home = sh.tmp.path().join("userhome");
    std::fs::create_dir_all(home.join("docs")).unwrap();
    std::fs::write(home.join("docs/up.txt"), b"up").unwrap();
    let out = sh
        .qft(&[])
        .env("HOME", &home)
        .write_stdin("put ~/docs/up.txt\nget s.txt -o ~/docs/\nlcd ~\nlpwd\nlls ~/docs\nlcd\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sh.served().read("up.txt").unwrap(), b"up");
    assert_eq!(std::fs::read(home.join("docs/s.txt")).unwrap(), b"s");
    let text = stdout(&out);
    assert!(
        text.contains(&format!("\n{}\n", home.display())),
        "lpwd: {text}"
    );
    assert!(
        text.contains("\ts.txt\n") && text.contains("\tup.txt\n"),
        "{text}"
    );
}

/// Item 13: an unknown command says what was probably meant.
#[test]
fn regression_an_unknown_command_says_did_you_mean() {
    let sh = Shell::start();
    let out = sh.qft(&[]).write_stdin("lsa\n").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown command 'lsa'; did you mean 'ls'?"),
        "{}",
        stderr(&out)
    );
}

/// Item 13: `-f/--force` (and `-j`) were listed for every one-shot command, `ls` and `delete`
/// too; `--window` showed 16777216 where the README says 16M; QFT_HOME was documented only in
/// certs/README.md.
#[test]
fn regression_help_lists_options_where_they_apply_and_sizes_as_typed() {
    let help = |args: &[&str]| {
        let out = assert_cmd::Command::new(crate::shell::BIN)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        stdout(&out)
    };
    let get = help(&["connect", "h", "get", "--help"]);
    assert!(get.contains("--force") && get.contains("--jobs"), "{get}");
    for command in ["ls", "delete", "help", "shutdown"] {
        let text = help(&["connect", "h", command, "--help"]);
        assert!(
            !text.contains("--force") && !text.contains("--jobs"),
            "{command}: {text}"
        );
    }
    let connect = help(&["connect", "--help"]);
    // --window and --send-window.
    assert!(connect.contains("[default: 24M]"), "{connect}");
    assert!(connect.contains("[default: 16M]"), "{connect}");
    assert!(
        !connect.contains("16777216") && !connect.contains("25165824"),
        "{connect}"
    );
    assert!(help(&["serve", "--help"]).contains("[default: 24M]"));
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let connecting = readme
        .split("## Connecting")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    assert!(
        connecting.contains("QFT_HOME"),
        "the README's Connecting section"
    );
}

/// `!cmd` runs a local shell command, as in sftp; its failure is a failure of the script.
#[test]
fn regression_bang_runs_a_local_shell_command() {
    let sh = Shell::start();
    let out = sh
        .qft(&[])
        .write_stdin("!echo made > made.txt\nlcd sub\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "lcd sub: no such directory");
    assert_eq!(
        std::fs::read(sh.local().join("made.txt")).unwrap(),
        b"made\n"
    );
    let out = sh
        .qft(&[])
        .write_stdin("!mkdir sub\nlcd sub\n!pwd\n!exit 3\n!echo never > never.txt\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).trim_end().ends_with("/local/sub"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("exited with status 3"),
        "{}",
        stderr(&out)
    );
    assert!(
        !sh.local().join("sub/never.txt").exists(),
        "the script stopped"
    );
    // It cannot read the script's own lines.
    let out = sh.qft(&[]).write_stdin("!cat\npwd\n").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "/\n");
}
