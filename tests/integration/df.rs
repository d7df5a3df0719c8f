//! Issue 15: `df`, the server's free space, at the prompt and as a one-shot command.

use qft::protocol::{write_frame, ErrorCode, Request, Response};
use qft::storage::Storage;

use crate::shell::{json_lines, stderr, stdout, Shell};

/// People reach for `df` before a large upload; there was no way to ask.
#[test]
fn regression_df_reports_the_servers_free_space() {
    let sh = Shell::start_with_config(|c| {
        c.limits.max_upload = Some(5 << 30);
        c.limits.min_free = 0;
    });
    let out = sh.qft(&["df"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (available, max) = text.trim_end().split_once('\t').unwrap();
    assert!(available.parse::<u64>().unwrap() > 0, "{text}");
    assert_eq!(max, (5u64 << 30).to_string());
    let out = sh.qft(&["--json"]).write_stdin("df\n").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let record = &json_lines(&out)[0];
    assert_eq!(record["type"], "space");
    assert!(record["available"].as_u64().unwrap() > 0);
    // The server lists it in its reference.
    let help = sh.qft(&["help"]).output().unwrap();
    assert!(stdout(&help).contains("DF"), "{}", stdout(&help));
}

/// Over an S3 bucket the free space cannot be known: said so, not made up.
#[test]
fn regression_df_over_s3_says_it_cannot_know() {
    let sh = Shell::start_with_config(|c| c.storage = Storage::object_in_memory());
    let out = sh.qft(&["df"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "-\t-\n");
    let out = sh.qft(&["--json", "df"]).output().unwrap();
    assert!(json_lines(&out)[0]["available"].is_null());
}

/// A server older than `df` answers as it answers any request it does not know: the client
/// says the server lacks df rather than showing the generic refusal.
#[test]
fn regression_df_on_an_older_server_says_it_lacks_df() {
    let sh = Shell::fake(|request, mut send, _recv| async move {
        if let Request::Space = request {
            let old = Response::Error {
                code: ErrorCode::Unsupported,
                message: "this server does not know that command; it may be older than the client"
                    .into(),
            };
            let _ = write_frame(&mut send, &old).await;
            let _ = send.finish();
        }
    });
    let out = sh.qft(&["df"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "qft: this server has no df: it is older than this client"
    );
}
