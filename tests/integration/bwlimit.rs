//! Issue 14: bandwidth limits on both sides. How closely a limit holds its rate is measured by
//! `bench/bwlimit` (over 30 s), never asserted here: these check that limited transfers are
//! whole and verified, and that a limit is given as a rate.

use crate::shell::{stderr, Shell};
use crate::support::{no_progress, random_bytes, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limited_transfers_arrive_whole_both_ways_on_both_sides() {
    let server = TestServer::start_with_config(|c| {
        c.limits.bwlimit = Some(8 << 20);
        c.limits.bwlimit_per_connection = Some(4 << 20);
    })
    .await;
    let client = crate::support::client_of(server.addr, server.fingerprint, |c| {
        c.bwlimit = Some(4 << 20);
    })
    .await;
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes((2 << 20) + 12345);
    let path = local.path().join("up.bin");
    std::fs::write(&path, &data).unwrap();
    client
        .upload(&path, "up.bin", &no_progress())
        .await
        .unwrap();
    assert_eq!(server.read("up.bin").unwrap(), data);
    let back = local.path().join("back.bin");
    client
        .download("up.bin", &back, false, &no_progress())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), data);
}

#[test]
fn a_bwlimit_is_a_rate() {
    let sh = Shell::start();
    sh.served().put("f", b"x");
    let out = sh.qft(&["--bwlimit", "10M", "get", "f"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for (bad, why) in [
        ("fast", "not a rate"),
        ("1K", "below the lowest"),
        ("0", "above 0"),
    ] {
        let out = sh.qft(&["--bwlimit", bad, "ls"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(stderr(&out).contains(why), "{bad}: {}", stderr(&out));
    }
}
