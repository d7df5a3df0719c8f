//! Share links made from a client: `share` at the prompt and as a one-shot command, by a client
//! with the admin permission, through the running server (which checks the name through its
//! storage and keeps the link); and `qft share` on the server's machine for a tree served from
//! S3. The links are used by `qft get LINK`, which opens the same session a browser does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use qft::protocol::{write_frame, ErrorCode, Response};
use qft::server::{Access, WebConfig};
use qft::tls::{Identity, CLIENT_IDENTITY_FILE};
use tempfile::TempDir;

use crate::shell::{json_lines, stderr, stdout, Shell, BIN};
use crate::support::random_bytes;

/// A server (with `--web` if `web`) that admits the shell's client with `grant`; the server's
/// qft home (its share links and browser certificates) is returned to be kept.
fn shell_granted(grant: &str, web: bool) -> (Shell, TempDir) {
    let server_home = tempfile::tempdir().unwrap();
    let list = server_home.path().join("authorized_clients");
    std::fs::write(&list, "").unwrap();
    let (home, listed) = (server_home.path().to_path_buf(), list.clone());
    let sh = Shell::start_with_config(move |c| {
        if web {
            c.web = Some(WebConfig::new(&home));
        }
        c.access = Access::Authorized(listed);
    });
    // The key the client presents: the one `qft connect` makes in its home on first use.
    let me = Identity::load_or_create(&sh.home().join(CLIENT_IDENTITY_FILE)).unwrap();
    std::fs::write(&list, format!("{} {grant} test client\n", me.fingerprint())).unwrap();
    (sh, server_home)
}

/// `qft get LINK -o DIR`, as a person without a key runs it.
fn get(link: &str, dir: &Path) -> std::process::Output {
    std::process::Command::new(BIN)
        .env_remove("RUST_LOG")
        .args(["get", link, "-o"])
        .arg(dir)
        .output()
        .unwrap()
}

/// Checks that a command failed (exit code 1) saying `text`.
fn fails_saying(out: &std::process::Output, text: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    assert!(stderr(out).contains(text), "{}", stderr(out));
}

/// The link a successful share printed: its stdout, alone.
fn link_of(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    let text = stdout(out);
    let link = text.trim();
    assert_eq!(text.lines().count(), 1, "the link alone on stdout: {text}");
    link.to_string()
}

#[test]
fn an_admin_shares_at_the_prompt_and_the_link_downloads() {
    let (sh, _server_home) = shell_granted("read,admin", true);
    let data = random_bytes(2 << 20);
    sh.served().put("docs/report.pdf", &data);

    // At the prompt, relative to its remote working directory.
    let out = sh
        .qft(&[])
        .write_stdin("cd docs\nshare report.pdf --expires 1h --uses 1\n")
        .output()
        .unwrap();
    let link = link_of(&out);
    let page = format!("http://127.0.0.1:{}/#t=", sh.addr.port());
    assert!(link.starts_with(&page), "{link}");
    assert!(
        link.contains("&m=read&k=file&n=docs/report.pdf&h="),
        "{link}"
    );
    assert!(
        stderr(&out).contains(": read docs/report.pdf until "),
        "{}",
        stderr(&out)
    );

    let saved = tempfile::tempdir().unwrap();
    let got = get(&link, saved.path());
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(
        std::fs::read(saved.path().join("report.pdf")).unwrap(),
        data
    );

    // Its one use is spent, and the list says so.
    let out = sh.qft(&["share", "--list"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(
        listed.contains("\tuses 1/1\tused up\tdocs/report.pdf"),
        "{listed}"
    );
}

#[test]
fn one_shot_share_lists_and_revokes_and_a_revoked_link_is_refused() {
    let (sh, _server_home) = shell_granted("read,admin", true);
    sh.served().put("a.txt", b"alpha");
    sh.served().mkdir("inbox");

    let out = sh.qft(&["--json", "share", "a.txt"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let record = &json_lines(&out)[0];
    assert_eq!(record["type"], "share");
    assert_eq!(record["access"], "read");
    assert_eq!(record["kind"], "file");
    let id = record["id"].as_str().unwrap().to_string();
    let link = record["link"].as_str().unwrap().to_string();

    let drop_box = link_of(
        &sh.qft(&["share", "inbox", "--upload-only"])
            .output()
            .unwrap(),
    );
    assert!(drop_box.contains("&m=upload&k=dir&n=inbox"), "{drop_box}");

    for (args, refusal) in [
        (
            &["share", "a.txt", "--upload-only"][..],
            "an upload-only link is for a directory",
        ),
        (&["share", "missing.txt"][..], "missing.txt"),
        (
            &["share", "a.txt", "--expires", "40d"][..],
            "at most 30 days",
        ),
    ] {
        let out = sh.qft(args).output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(stderr(&out).contains(refusal), "{args:?}: {}", stderr(&out));
    }

    let out = sh.qft(&["share", "--revoke", &id]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("revoked {id}")),
        "{}",
        stderr(&out)
    );
    let out = sh.qft(&["share", "--revoke", &id]).output().unwrap();
    fails_saying(&out, "there is no share link with the ID");
    let listed = stdout(&sh.qft(&["share", "--list"]).output().unwrap());
    assert_eq!(
        listed.lines().count(),
        1,
        "only the drop box is left: {listed}"
    );
    assert!(listed.contains("\tupload-only\t"), "{listed}");

    let saved = tempfile::tempdir().unwrap();
    let got = get(&link, saved.path());
    fails_saying(&got, "this link is not valid on this server");
    assert!(crate::support::list_dir(saved.path()).is_empty());
}

#[test]
fn share_needs_the_admin_permission() {
    let (sh, _server_home) = shell_granted("read,write,delete", true);
    sh.served().put("a.txt", b"alpha");
    for args in [&["share", "a.txt"][..], &["share", "--list"][..]] {
        let out = sh.qft(args).output().unwrap();
        fails_saying(
            &out,
            "permission denied: SHARE needs the 'admin' permission",
        );
    }
}

#[test]
fn share_on_a_server_without_web_says_so() {
    let (sh, _server_home) = shell_granted("read,admin", false);
    sh.served().put("a.txt", b"alpha");
    let out = sh.qft(&["share", "a.txt"]).output().unwrap();
    fails_saying(&out, "this server was not started with --web");
}

/// A server older than `share` answers as it answers any request it does not know.
#[test]
fn share_on_an_older_server_says_it_lacks_share() {
    let sh = Shell::fake(|_request, mut send, _recv| async move {
        let old = Response::Error {
            code: ErrorCode::Unsupported,
            message: "this server does not know that command; it may be older than the client"
                .into(),
        };
        let _ = write_frame(&mut send, &old).await;
        let _ = send.finish();
    });
    let out = sh.qft(&["share", "a.txt"]).output().unwrap();
    fails_saying(
        &out,
        "this server does not support share; it is older than this client",
    );
}

/// `qft serve s3://... --web` as a person runs it, with its qft home.
struct S3Server {
    child: std::process::Child,
    port: u16,
    fingerprint: String,
    home: PathBuf,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn with_s3_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("AWS_ACCESS_KEY_ID", "testkey")
        .env("AWS_SECRET_ACCESS_KEY", "testsecret")
        .env("AWS_REGION", "us-east-1")
        .env_remove("RUST_LOG")
}

fn serve_s3(url: &str, tmp: &Path) -> S3Server {
    let home = tmp.join("server-home");
    let port_file = tmp.join("port");
    let out = tmp.join("serve.out");
    let child = with_s3_env(std::process::Command::new(BIN).env("QFT_HOME", &home))
        .args(["serve", url, "--web", "--s3-endpoint"])
        .arg(crate::seaweed::endpoint())
        .args(["--listen", "127.0.0.1:0", "--port-file"])
        .arg(&port_file)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(tmp.join("serve.err")).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let port = loop {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break port;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not start: {}",
            std::fs::read_to_string(tmp.join("serve.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let printed = std::fs::read_to_string(&out).unwrap();
    let fingerprint = printed
        .lines()
        .find_map(|l| l.strip_prefix("Fingerprint: "))
        .unwrap()
        .to_owned();
    S3Server {
        child,
        port,
        fingerprint,
        home,
    }
}

/// Regression: `qft share` looked for the name on the local disk, so nothing served from a
/// bucket could be shared. It now asks the same storage the server serves.
#[test]
fn regression_qft_share_makes_links_for_a_tree_served_from_s3() {
    let config = crate::seaweed::config();
    let url = format!("s3://{}/{}", config.bucket, config.prefix);
    let tmp = tempfile::tempdir().unwrap();
    let server = serve_s3(&url, tmp.path());
    let data = random_bytes((1 << 20) + 4321);
    std::fs::write(tmp.path().join("report.pdf"), &data).unwrap();
    let connect = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .env("QFT_HOME", tmp.path().join("client-home"))
            .env_remove("RUST_LOG")
            .current_dir(tmp.path())
            .arg("connect")
            .arg(format!("127.0.0.1:{}", server.port))
            .args(["--fingerprint", &server.fingerprint])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    connect(&["put", "report.pdf"]);
    connect(&["mkdir", "inbox"]);

    let share = |args: &[&str]| {
        with_s3_env(std::process::Command::new(BIN).env("QFT_HOME", &server.home))
            .current_dir(tmp.path())
            .arg("share")
            .args(args)
            .args(["--dir", &url, "--s3-endpoint", crate::seaweed::endpoint()])
            .output()
            .unwrap()
    };
    let link = link_of(&share(&["report.pdf", "--uses", "2"]));
    // The page this server noted for its bucket: the two agree on what the root is.
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{}/#t=", server.port)),
        "{link}"
    );
    let saved = tempfile::tempdir().unwrap();
    let got = get(&link, saved.path());
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(
        std::fs::read(saved.path().join("report.pdf")).unwrap(),
        data
    );

    let drop_box = link_of(&share(&["inbox", "--upload-only"]));
    assert!(drop_box.contains("&m=upload&k=dir&n=inbox"), "{drop_box}");
    fails_saying(&share(&["missing.pdf"]), "cannot share 'missing.pdf'");
}
