//! The qft home: where identities and known hosts live.

use std::io;
use std::path::PathBuf;

/// The directory named by `QFT_HOME`, else the platform config dir's `qft` (e.g. `~/.config/qft`).
/// Created with mode 0700 on first use, because it holds private keys.
pub fn qft_home() -> io::Result<PathBuf> {
    let dir = match std::env::var_os("QFT_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dirs::config_dir()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "no config directory on this system; set QFT_HOME",
                )
            })?
            .join("qft"),
    };
    if dir.exists() && !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!(
                "the qft home {} is not a directory (QFT_HOME)",
                dir.display()
            ),
        ));
    }
    if !dir.is_dir() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
    }
    Ok(dir)
}
