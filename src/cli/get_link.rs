//! `qft get LINK`: download the file a share link names, verified, as a qft client.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::client::display::emit;
use crate::paths::sanitize;
use crate::share::fetch::{fetch, Link};

/// `qft get LINK [-o PATH] [--force]`.
#[derive(Debug, Args)]
pub(super) struct GetLinkArgs {
    /// A share link from `qft share` (quote it: it has '&' in it).
    link: String,
    /// Where to write: a directory (the file keeps its name) or a file name.
    #[arg(short, long, value_name = "PATH", default_value = ".")]
    output: PathBuf,
    /// Replace an existing file.
    #[arg(short, long)]
    force: bool,
}

/// Runs `qft get LINK`.
pub(super) async fn get(args: GetLinkArgs) -> anyhow::Result<()> {
    let link = Link::parse(&args.link)?;
    let progress = crate::client::progress::Progress::new(true);
    let bar = progress.bar(&link.name, None);
    let fetched = fetch(&link, &args.output, args.force, &bar).await;
    drop(bar);
    let (path, size, sha256) = fetched.context("the download failed")?;
    let hex: String = sha256.iter().map(|b| format!("{b:02x}")).collect();
    emit(&format!(
        "downloaded\t{}\t{}\t{size}\t{hex}",
        sanitize(&link.name),
        path.display()
    ));
    Ok(())
}
