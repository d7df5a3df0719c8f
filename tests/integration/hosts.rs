//! Issue 15: host aliases and saved settings in the qft home's config.toml, as ssh's config.

use crate::cli::{stderr, Served, World};

/// `qft connect NAME` said "cannot resolve NAME": there was no way to save a server's address,
/// key and settings under a name. Now `[host.NAME]` in config.toml holds them, flags win over
/// them, and a mistake in the file names its line.
#[test]
fn regression_connect_to_a_host_alias_from_config_toml() {
    let w = World::new();
    // An identity kept for this host alone, and a server that admits only it.
    std::fs::create_dir(w.path("other-home")).unwrap();
    let id = w
        .qft()
        .env("QFT_HOME", w.path("other-home"))
        .arg("id")
        .output()
        .unwrap();
    let fingerprint = String::from_utf8_lossy(&id.stdout).trim().to_string();
    std::fs::copy(
        w.path("other-home").join(qft::tls::CLIENT_IDENTITY_FILE),
        w.path("client-home/box.pem"),
    )
    .unwrap();
    std::fs::write(w.path("authorized"), format!("{fingerprint} read,write\n")).unwrap();
    let server = Served::start_with(
        &w.path("server-home"),
        &w.path("served"),
        "127.0.0.1:0",
        &[
            "--authorized-clients",
            w.path("authorized").to_str().unwrap(),
        ],
    );
    let stale = qft::tls::Identity::generate().unwrap().fingerprint();
    let config = |fingerprint: &str| {
        let text = format!(
            "# saved servers\n[host.box]\naddress = \"{}\"\nfingerprint = \"{fingerprint}\"\n\
             identity = \"box.pem\"\njobs = 4\nwindow = \"8M\"\ntimeout = 5\n",
            server.addr()
        );
        std::fs::write(w.path("client-home/config.toml"), text).unwrap();
    };
    config(&server.fingerprint);
    std::fs::write(w.path("local/up.txt"), b"saved").unwrap();
    let put = w
        .qft()
        .args(["connect", "box", "put", "up.txt"])
        .output()
        .unwrap();
    assert!(put.status.success(), "{}", stderr(&put));
    assert_eq!(std::fs::read(w.path("served/up.txt")).unwrap(), b"saved");
    assert!(
        !w.path("client-home/known_hosts").exists(),
        "the saved key was pinned, nothing recorded"
    );

    // A flag wins over the file: a stale saved key is refused, the one given is trusted.
    config(&stale.to_string());
    let refused = w.qft().args(["connect", "box", "ls"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains(&stale.to_string()),
        "{}",
        stderr(&refused)
    );
    let given = w
        .qft()
        .args(["connect", "box", "--fingerprint", &server.fingerprint, "ls"])
        .output()
        .unwrap();
    assert!(given.status.success(), "{}", stderr(&given));

    // A mistake in the file is an error that names the file and the line.
    std::fs::write(
        w.path("client-home/config.toml"),
        format!(
            "[host.box]\naddress = \"{}\"\n\nwindw = \"8M\"\n",
            server.addr()
        ),
    )
    .unwrap();
    let bad = w.qft().args(["connect", "box", "ls"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = stderr(&bad);
    assert!(err.contains("config.toml, line 4"), "{err}");
    assert!(err.contains("windw"), "{err}");
}
