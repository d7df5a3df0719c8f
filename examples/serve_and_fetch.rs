//! qft as a library: serve a directory and fetch a file from it, in one process.
//!
//! ```text
//! cargo run --example serve_and_fetch
//! ```

use std::time::Duration;

use indicatif::ProgressBar;
use qft::client::{Client, ConnectConfig, Target, Trust};
use qft::server::{Server, ServerConfig};
use qft::storage::Storage;
use qft::tls::Identity;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let served = tempfile::tempdir()?;
    std::fs::write(served.path().join("greeting.txt"), b"hello from qft\n")?;

    // An in-memory identity; `Identity::load_or_create` keeps one on disk instead.
    let identity = Identity::generate()?;
    let server = Server::bind(ServerConfig::new(
        Storage::open(served.path())?,
        identity,
        "127.0.0.1:0".parse()?,
    ))?;
    let addr = server.local_addr()?;
    let fingerprint = server.fingerprint();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    // The client trusts exactly the key we were told, as `--fingerprint` does.
    let trust = Trust {
        pin: Some(fingerprint),
        ..Trust::default()
    };
    let client = Client::connect(&ConnectConfig {
        // The client's own identity, for servers that admit only listed clients.
        identity: Some(Identity::generate()?),
        timeout: Duration::from_secs(5),
        ..ConnectConfig::new(Target::parse(&addr.to_string())?, trust)
    })
    .await?;
    for entry in client.list("").await? {
        println!("listed {} ({} bytes)", entry.name, entry.size);
    }
    let local = tempfile::tempdir()?;
    let dest = local.path().join("greeting.txt");
    let report = client
        .download("greeting.txt", &dest, false, &ProgressBar::hidden())
        .await?;
    println!(
        "fetched {} bytes, SHA-256 {}: {:?}",
        report.bytes,
        qft::transfer::hex(&report.sha256),
        std::fs::read_to_string(&dest)?
    );
    client.close().await;
    let _ = stop.send(());
    serving.await?;
    Ok(())
}
