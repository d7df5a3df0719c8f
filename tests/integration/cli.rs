//! The binary as a person and a script use it: `qft serve` in a subprocess, `qft connect` in
//! one-shot and batch-prompt form, trust without a terminal, exit statuses.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::support::random_bytes;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_qft");

/// `qft serve` in a subprocess with its own home; killed on drop.
pub(crate) struct Served {
    child: Child,
    pub(crate) port: u16,
    pub(crate) fingerprint: String,
    _stdout: BufReader<ChildStdout>,
}

impl Served {
    pub(crate) fn start(home: &Path, dir: &Path, listen: &str) -> Served {
        Self::start_with(home, dir, listen, &[])
    }

    pub(crate) fn start_with(home: &Path, dir: &Path, listen: &str, extra: &[&str]) -> Served {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["serve", dir.to_str().unwrap(), "--listen", listen])
            .args(extra);
        Self::spawn(cmd, home)
    }

    /// `qft serve` in a private mount namespace whose `dir` is a fresh tmpfs of `size`: a disk
    /// that really fills up, visible to nothing else. `-r` maps the caller to root in a new user
    /// namespace, so this needs no privilege where user namespaces are enabled (most Linux).
    pub(crate) fn start_on_small_disk(home: &Path, dir: &Path, size: &str) -> Served {
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["-r", "-m", "sh", "-c"])
            .arg(r#"mount -t tmpfs -o size="$2" tmpfs "$1" && shift 2 && exec "$0" serve "$@""#)
            .args([BIN, dir.to_str().unwrap(), size, dir.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--min-free", "0"]);
        Self::spawn(cmd, home)
    }

    /// Runs `cmd` (a `qft serve` to which `--port-file` is added) and waits until it serves.
    fn spawn(mut cmd: std::process::Command, home: &Path) -> Served {
        let port_file = home.join("port");
        let _ = std::fs::remove_file(&port_file);
        let mut child = cmd
            .arg("--port-file")
            .arg(&port_file)
            .env("QFT_HOME", home)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(home.join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        for _ in 0..3 {
            stdout.read_line(&mut banner).unwrap();
        }
        let fingerprint = banner
            .lines()
            .find_map(|l| l.strip_prefix("Fingerprint: "))
            .unwrap_or_else(|| panic!("no fingerprint in {banner:?}"))
            .to_string();
        assert!(
            banner.contains(&format!("--fingerprint {fingerprint}")),
            "{banner}"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "no port file");
            std::thread::sleep(Duration::from_millis(20));
        };
        Served {
            child,
            port,
            fingerprint,
            _stdout: stdout,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGTERM, then the exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Served {
    /// kill -9: no chance to clean up, as in a crash or a power cut.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Homes and directories for one test: a server home and served dir, a client home and cwd.
pub(crate) struct World {
    tmp: tempfile::TempDir,
}

impl World {
    pub(crate) fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["server-home", "served", "client-home", "local"] {
            std::fs::create_dir(tmp.path().join(d)).unwrap();
        }
        World { tmp }
    }
    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }
    fn serve(&self) -> Served {
        Served::start(
            &self.path("server-home"),
            &self.path("served"),
            "127.0.0.1:0",
        )
    }
    /// `qft ...` as the client, in `local/`, without a terminal.
    pub(crate) fn qft(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env("QFT_HOME", self.path("client-home"))
            .env_remove("RUST_LOG")
            .current_dir(self.path("local"))
            .timeout(Duration::from_secs(60));
        cmd
    }
    /// `qft connect ADDR --fingerprint FP ARGS...`
    pub(crate) fn connect(&self, server: &Served, args: &[&str]) -> Command {
        let mut cmd = self.qft();
        cmd.args([
            "connect",
            &server.addr(),
            "--fingerprint",
            &server.fingerprint,
        ])
        .args(args);
        cmd
    }
}

pub(crate) fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
pub(crate) fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_server_identity_is_made_once_and_kept() {
    let w = World::new();
    let first = w.serve();
    let printed = Command::new(BIN)
        .arg("fingerprint")
        .env("QFT_HOME", w.path("server-home"))
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(stdout(&printed).trim(), first.fingerprint);
    let fp = first.fingerprint.clone();
    assert!(first.terminate().success(), "SIGTERM is a clean exit");
    let second = w.serve();
    assert_eq!(second.fingerprint, fp, "the same key after a restart");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = w.path("server-home").join(qft::tls::SERVER_IDENTITY_FILE);
        assert_eq!(
            std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn one_shot_commands_do_one_thing_and_report_it() {
    let w = World::new();
    let server = w.serve();
    let data = random_bytes(3 * 1024 * 1024 + 5);
    std::fs::write(w.path("local/data.bin"), &data).unwrap();

    let put = w.connect(&server, &["put", "data.bin"]).output().unwrap();
    assert!(put.status.success(), "{}", stderr(&put));
    assert_eq!(std::fs::read(w.path("served/data.bin")).unwrap(), data);
    let line = stdout(&put);
    let fields: Vec<&str> = line.trim_end().split('\t').collect();
    assert_eq!(fields[0], "uploaded", "{line}");
    assert_eq!(fields[3], data.len().to_string());
    assert_eq!(fields[4].len(), 64, "sha256 hex");
    assert!(
        stderr(&put).is_empty(),
        "no progress or noise without a terminal: {}",
        stderr(&put)
    );

    let list = w.connect(&server, &["ls"]).output().unwrap();
    assert!(list.status.success());
    let row = stdout(&list);
    assert!(
        row.starts_with(&format!("{}\t", data.len())) && row.trim_end().ends_with("\tdata.bin"),
        "{row}"
    );

    // get skips a local file that is already the same, refuses to replace a different one,
    // replaces it with --force, and -o names the target.
    let again = w.connect(&server, &["get", "data.bin"]).output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).starts_with("skipped\tdata.bin\talready here, identical"),
        "{}",
        stdout(&again)
    );
    std::fs::write(w.path("local/data.bin"), b"stale").unwrap();
    let refused = w.connect(&server, &["get", "data.bin"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("already exists; use --force"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(std::fs::read(w.path("local/data.bin")).unwrap(), b"stale");
    let forced = w
        .connect(&server, &["get", "data.bin", "--force"])
        .output()
        .unwrap();
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(std::fs::read(w.path("local/data.bin")).unwrap(), data);
    let named = w
        .connect(&server, &["download", "data.bin", "-o", "copy.bin"])
        .output()
        .unwrap();
    assert!(named.status.success(), "{}", stderr(&named));
    assert_eq!(std::fs::read(w.path("local/copy.bin")).unwrap(), data);

    let help = w.connect(&server, &["help"]).output().unwrap();
    assert!(help.status.success());
    for usage in [
        "LIST",
        "UPLOAD <path>",
        "DOWNLOAD <name>",
        "DELETE <name>",
        "HELP",
        "LOGOUT",
    ] {
        assert!(
            stdout(&help).contains(usage),
            "{usage} missing from {}",
            stdout(&help)
        );
    }

    let rm = w.connect(&server, &["rm", "data.bin"]).output().unwrap();
    assert!(rm.status.success());
    assert!(!w.path("served/data.bin").exists());
    let missing = w
        .connect(&server, &["delete", "data.bin"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(stderr(&missing).trim(), "qft: 'data.bin' does not exist");
    let missing_get = w.connect(&server, &["get", "nope"]).output().unwrap();
    assert_eq!(missing_get.status.code(), Some(1));
    assert!(!w.path("local/nope").exists());
}

#[test]
fn every_tuning_choice_moves_a_file_intact() {
    // Both ends on settings other than the defaults, and differing: each end's choice is its own.
    let w = World::new();
    let server = Served::start_with(
        &w.path("server-home"),
        &w.path("served"),
        "127.0.0.1:0",
        &[
            "--congestion",
            "cubic",
            "--window",
            "1M",
            "--send-window",
            "2M",
            "--max-packet",
            "1200",
        ],
    );
    let data = random_bytes(5 * 1024 * 1024 + 3);
    std::fs::write(w.path("served/d.bin"), &data).unwrap();
    std::fs::write(w.path("local/u.bin"), &data).unwrap();
    for controller in ["newreno", "bbr"] {
        let tuning = [
            "--congestion",
            controller,
            "--window",
            "2M",
            "--max-packet",
            "65527",
        ];
        let get = w
            .connect(&server, &tuning)
            .args(["get", "-f", "d.bin"])
            .output()
            .unwrap();
        assert!(get.status.success(), "{controller}: {}", stderr(&get));
        assert_eq!(std::fs::read(w.path("local/d.bin")).unwrap(), data);
        let put = w
            .connect(&server, &tuning)
            .args(["put", "u.bin"])
            .output()
            .unwrap();
        assert!(put.status.success(), "{controller}: {}", stderr(&put));
        assert_eq!(std::fs::read(w.path("served/u.bin")).unwrap(), data);
        std::fs::remove_file(w.path("served/u.bin")).unwrap();
    }
}

#[test]
fn usage_mistakes_exit_2() {
    let w = World::new();
    for args in [
        vec!["connect"],
        vec!["connect", "127.0.0.1:1", "frobnicate"],
        vec!["connect", "127.0.0.1:1", "get"],
        vec!["connect", "127.0.0.1:1", "--fingerprint", "MD5:nope", "ls"],
        vec!["serve", "--listen", "nonsense"],
        vec!["connect", "host:notaport", "ls"],
        vec!["connect", "127.0.0.1:1", "--congestion", "vegas", "ls"],
        vec!["connect", "127.0.0.1:1", "--max-packet", "1000", "ls"],
        vec!["serve", "--window", "lots"],
    ] {
        let out = w.qft().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty());
    }
}

#[test]
fn no_server_is_a_failure_with_one_sentence() {
    let w = World::new();
    // A port nothing listens on (bound and released), with a short timeout.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = w
        .qft()
        .args([
            "connect",
            &format!("127.0.0.1:{port}"),
            "--accept-new",
            "--timeout",
            "1",
            "ls",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("qft: cannot connect to 127.0.0.1:") && err.lines().count() == 1,
        "{err}"
    );
    // Issue 15 item 11: it says what to check, not only "no answer within 1.0 s".
    assert!(err.contains("qft serve"), "{err}");
    assert!(err.contains(&format!("UDP port {port}")), "{err}");
}

#[test]
fn the_prompt_reads_commands_from_a_pipe() {
    let w = World::new();
    let server = w.serve();
    std::fs::create_dir(w.path("local/src")).unwrap();
    std::fs::write(w.path("local/src/up.txt"), b"alpha").unwrap();
    // Names in any case, aliases, a blank line, a command allowed to fail, and a command after
    // LOGOUT.
    let script = "PUT src/up.txt\nls\n-rm nope\n\nDoWnLoAd up.txt\nHELP\nlogout\nls\n";
    let out = w
        .connect(&server, &[])
        .write_stdin(script)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "'-rm nope' may fail: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("uploaded\tup.txt\tsrc/up.txt\t5\t"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("5\t") && lines[1].ends_with("\tup.txt"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("downloaded\tup.txt\tup.txt\t5\t"),
        "{text}"
    );
    assert!(lines[3].contains("LIST"), "HELP output follows: {text}");
    let listings = lines.iter().filter(|l| l.starts_with("5\t")).count();
    assert_eq!(listings, 1, "nothing runs after LOGOUT: {text}");
    assert_eq!(stderr(&out).trim(), "qft: 'nope' does not exist");
    assert_eq!(std::fs::read(w.path("local/up.txt")).unwrap(), b"alpha");
    assert_eq!(std::fs::read(w.path("served/up.txt")).unwrap(), b"alpha");

    // All good: exit 0, and the end of input ends the session like LOGOUT.
    let ok = w
        .connect(&server, &[])
        .write_stdin("ls\nhelp\n")
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
    let bad = w
        .connect(&server, &[])
        .write_stdin("bogus\n")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("unknown command 'bogus'"));
}

#[test]
fn trust_on_first_use_without_a_terminal() {
    let w = World::new();
    let server = w.serve();
    let known_hosts = w.path("client-home/known_hosts");

    // First contact, no terminal, no flag: refused, with the fingerprint and both ways out.
    let refused = w
        .qft()
        .args(["connect", &server.addr(), "ls"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(err.contains(&server.fingerprint), "{err}");
    assert!(
        err.contains("--accept-new")
            && err.contains(&format!("--fingerprint {}", server.fingerprint)),
        "{err}"
    );
    assert!(!known_hosts.exists());
    assert!(
        !std::fs::read_to_string(w.path("server-home/serve.log"))
            .unwrap()
            .contains("cmd{"),
        "no command reached the server"
    );

    // --accept-new records it; later connections need no flag.
    let accepted = w
        .qft()
        .args(["connect", &server.addr(), "--accept-new", "ls"])
        .output()
        .unwrap();
    assert!(accepted.status.success(), "{}", stderr(&accepted));
    let recorded = std::fs::read_to_string(&known_hosts).unwrap();
    assert_eq!(
        recorded,
        format!("{} {}\n", server.addr(), server.fingerprint)
    );
    let plain = w
        .qft()
        .args(["connect", &server.addr(), "ls"])
        .output()
        .unwrap();
    assert!(plain.status.success(), "{}", stderr(&plain));

    // A wrong --fingerprint is refused.
    let other = qft::tls::Identity::generate()
        .unwrap()
        .fingerprint()
        .to_string();
    let wrong = w
        .qft()
        .args(["connect", &server.addr(), "--fingerprint", &other, "ls"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("not the expected"),
        "{}",
        stderr(&wrong)
    );

    // The server comes back on the same port with another identity: refused loudly.
    let addr = server.addr();
    drop(server);
    std::fs::create_dir(w.path("other-home")).unwrap();
    let impostor = Served::start(&w.path("other-home"), &w.path("served"), &addr);
    let changed = w
        .qft()
        .args(["connect", &addr, "--accept-new", "ls"])
        .output()
        .unwrap();
    assert_eq!(changed.status.code(), Some(1));
    let err = stderr(&changed);
    assert!(
        err.contains("CHANGED") && err.contains(&impostor.fingerprint),
        "{err}"
    );
    assert!(
        err.contains(&format!("remove line 1 of {}", known_hosts.display())),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&known_hosts).unwrap(),
        recorded,
        "the record is kept"
    );
}

#[test]
fn qft_id_and_an_authorized_clients_file() {
    let w = World::new();
    let id = w.qft().arg("id").output().unwrap();
    assert!(id.status.success());
    let fingerprint = stdout(&id).trim().to_string();
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    assert_eq!(
        stdout(&w.qft().arg("id").output().unwrap()).trim(),
        fingerprint,
        "kept"
    );

    let list = w.path("authorized");
    std::fs::write(
        &list,
        format!("# who may connect\n{fingerprint} read  the test client\n"),
    )
    .unwrap();
    let server = Served::start_with(
        &w.path("server-home"),
        &w.path("served"),
        "127.0.0.1:0",
        &["--authorized-clients", list.to_str().unwrap()],
    );
    std::fs::write(w.path("served/f"), b"x").unwrap();
    std::fs::write(w.path("local/up"), b"y").unwrap();

    let ls = w.connect(&server, &["ls"]).output().unwrap();
    assert!(ls.status.success(), "{}", stderr(&ls));
    let put = w.connect(&server, &["put", "up"]).output().unwrap();
    assert_eq!(put.status.code(), Some(1));
    assert_eq!(
        stderr(&put).trim(),
        "qft: up: permission denied: UPLOAD needs the 'write' permission, which this client does not have"
    );
    assert!(!w.path("served/up").exists());

    // Another client (another home, another key) is refused, and told its key.
    std::fs::create_dir(w.path("stranger-home")).unwrap();
    let stranger = w
        .connect(&server, &["ls"])
        .env("QFT_HOME", w.path("stranger-home"))
        .output()
        .unwrap();
    assert_eq!(stranger.status.code(), Some(1));
    let err = stderr(&stranger);
    assert!(
        err.starts_with("qft: the server refused this client: this client (SHA256:"),
        "{err}"
    );
    assert!(
        !err.contains(&fingerprint),
        "it names the stranger's own key: {err}"
    );
}

#[test]
fn an_open_server_on_a_public_address_warns_at_start() {
    let w = World::new();
    // Bound on every interface, but nothing connects except over loopback.
    let server = Served::start(&w.path("server-home"), &w.path("served"), "0.0.0.0:0");
    let log = std::fs::read_to_string(w.path("server-home/serve.log")).unwrap();
    assert!(
        log.contains("no --authorized-clients: anyone who can reach"),
        "{log}"
    );
    drop(server);
    let local = Served::start(&w.path("server-home"), &w.path("served"), "127.0.0.1:0");
    let log = std::fs::read_to_string(w.path("server-home/serve.log")).unwrap();
    assert!(
        !log.contains("anyone who can reach"),
        "no warning on loopback: {log}"
    );
    drop(local);
}
