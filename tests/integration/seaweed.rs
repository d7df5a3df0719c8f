//! A real S3 store for the tests: one SeaweedFS (`weed mini`) per test run, installed and started
//! by `tests/s3/seaweed` on free loopback ports on first use, stopped by that script's watchdog
//! when this test process exits. Each test gets a key prefix of its own in the bucket `qft-test`.
//!
//! A test that needs S3 fails, with the reason, if SeaweedFS cannot be installed or started: it
//! never passes without having run.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use qft::storage::object::ObjectConfig;
use qft::storage::Storage;

/// The running store: its endpoint, or why there is none.
static SEAWEED: OnceLock<Result<String, String>> = OnceLock::new();

/// The endpoint of this run's SeaweedFS, starting it on first use.
pub fn endpoint() -> &'static str {
    match SEAWEED.get_or_init(start) {
        Ok(endpoint) => endpoint,
        Err(why) => panic!("S3 tests need SeaweedFS, which could not start: {why}"),
    }
}

fn start() -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3/seaweed");
    let out = Command::new(&script)
        .arg("start")
        .arg(std::process::id().to_string())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let endpoint = stdout
        .lines()
        .find_map(|l| l.strip_prefix("S3_ENDPOINT="))
        .filter(|_| out.status.success());
    let Some(endpoint) = endpoint else {
        return Err(format!(
            "{} start failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    };
    // Credentials come from the environment, as for a person running `qft serve s3://...`.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testkey");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testsecret");
    std::env::set_var("AWS_REGION", "us-east-1");
    Ok(endpoint.to_owned())
}

/// Where a test's files live: `s3://qft-test/<a prefix of its own>`.
pub fn config() -> ObjectConfig {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = format!(
        "t{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
    );
    ObjectConfig {
        bucket: "qft-test".into(),
        prefix,
        endpoint: Some(endpoint().to_owned()),
        allow_http: false,
    }
}

/// Storage over `config` (a second server over the same prefix opens the same config again).
pub async fn open(config: &ObjectConfig) -> Storage {
    Storage::open_object(config)
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", config.prefix))
}
