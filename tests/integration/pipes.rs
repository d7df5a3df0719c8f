//! Issue 15, item 5: pipes. `get NAME -o -` wrote a file called `-`; it writes to stdout, and
//! only a verified file ends with status 0. `put -` read a file called `-`; with `--name` it
//! stores what stdin gives. Nothing but the data reaches stdout.

use qft::protocol::{write_frame, Request, Response, Trailer};

use crate::shell::{json_lines, stderr, stdout, Shell};
use crate::support::random_bytes;

#[test]
fn regression_get_o_dash_writes_the_file_to_stdout_verified() {
    let sh = Shell::start();
    let data = random_bytes(3 * 1024 * 1024 + 7);
    sh.served().put("data.bin", &data);
    let out = sh.qft(&["get", "data.bin", "-o", "-"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout == data, "stdout is exactly the file");
    assert!(!sh.local().join("-").exists(), "no file called '-'");
    let err = stderr(&out);
    assert!(
        err.starts_with("downloaded\tdata.bin\t-\t3145735\t"),
        "{err}"
    );

    // --json: the records go to stderr too, so stdout stays the data.
    let out = sh
        .qft(&["--json", "get", "data.bin", "-o", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout == data);
    let records: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["type"], "downloaded");
    assert_eq!(records[0]["path"], "-");
    assert_eq!(records.last().unwrap()["type"], "summary");

    // One file only: several, or a pattern, cannot share stdout (a usage mistake).
    let out = sh
        .qft(&["get", "data.bin", "other", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("one file"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

/// A body whose SHA-256 does not match the trailer: the bytes are on stdout already, so the
/// status is 1 and the person is told plainly that the output is bad.
#[test]
fn regression_get_o_dash_of_a_corrupt_body_exits_1_and_says_the_output_is_bad() {
    let sh = Shell::fake(|request, mut send, _recv| async move {
        if let Request::Download { .. } = request {
            let header = Response::FileHeader {
                size: 5,
                modified: None,
            };
            write_frame(&mut send, &header).await.unwrap();
            send.write_all(b"hello").await.unwrap();
            let lie = Trailer { sha256: [9; 32] };
            write_frame(&mut send, &lie).await.unwrap();
            let _ = send.finish();
            let _ = send.stopped().await;
        }
    });
    let out = sh.qft(&["get", "f.txt", "-o", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, b"hello");
    let err = stderr(&out);
    assert!(err.contains("the output on stdout is bad"), "{err}");
    assert!(err.contains("cannot be taken back"), "{err}");
    assert!(err.contains("SHA-256"), "{err}");
    let json = sh
        .qft(&["--json", "get", "f.txt", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(json.stdout, b"hello");
    assert!(
        stderr(&json).contains(r#""code":"hash_mismatch""#),
        "{}",
        stderr(&json)
    );
}

#[test]
fn regression_put_dash_stores_what_stdin_gives_under_its_name() {
    let sh = Shell::start();
    // Large (sent in pieces, resumable) and small (in one round trip).
    let big = random_bytes(2 * 1024 * 1024 + 3);
    let out = sh
        .qft(&["put", "-", "--name", "backups/big.bin"])
        .write_stdin(big.clone())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sh.served().read("backups/big.bin").unwrap(), big);
    assert!(
        stdout(&out).starts_with("uploaded\tbackups/big.bin\t-\t2097155\t"),
        "{}",
        stdout(&out)
    );
    let out = sh
        .qft(&["--json", "put", "-", "-o", "small.txt"])
        .write_stdin("small")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sh.served().read("small.txt").unwrap(), b"small");
    assert_eq!(json_lines(&out)[0]["type"], "uploaded");

    // Without a name, or with other paths: a usage mistake, said before connecting.
    let out = sh.qft(&["put", "-"]).write_stdin("x").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--name NAME"), "{}", stderr(&out));
    // At the prompt stdin is the prompt's own input.
    let out = sh.qft(&[]).write_stdin("put - \n").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("prompt's own input"),
        "{}",
        stderr(&out)
    );
    assert!(!sh.served().exists("-"));
}
