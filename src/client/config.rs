//! `config.toml` in the qft home: host aliases and their saved settings, as ssh's config has
//! them. `qft connect NAME`, for a `[host.NAME]` table, connects to its address with its
//! settings; a flag given on the command line wins over the file.
//!
//! ```toml
//! [host.backup]
//! address = "files.example.com:4433"   # HOST:PORT, HOST or [IPv6]:PORT (required)
//! fingerprint = "SHA256:..."           # trust exactly this key, as --fingerprint
//! identity = "backup.pem"              # this client's key for it (relative: in the qft home)
//! jobs = 8                             # as -j
//! congestion = "cubic"                 # tuning, as the flags of the same names
//! window = "32M"
//! send_window = "16M"
//! max_packet = 1452
//! timeout = 20                         # seconds, as --timeout and --stall-timeout
//! stall_timeout = 120
//! bwlimit = "10M"                      # as --bwlimit: file bytes per second, all transfers
//! compress = true                      # as -C (no flag turns it off again: leave it out)
//! ```
//! A file that is not valid TOML, a table or a setting this build does not know, and a value
//! out of range are errors that name the file and the line: a typo never silently means "the
//! default".

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::session::MAX_JOBS;
use crate::fsutil::describe_io;
use crate::tls::Fingerprint;
use crate::tuning::{parse_size, Congestion, MAX_PACKET, MIN_PACKET};

/// The config file's name in the qft home.
pub const CONFIG_FILE: &str = "config.toml";

/// What `config.toml` says: the hosts by alias.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    hosts: BTreeMap<String, Host>,
}

/// One `[host.NAME]` table: where the server is, and the settings for it. `None`: not set here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// The server: `HOST:PORT`, `HOST` or `[IPv6]:PORT`.
    pub address: String,
    /// The key to trust, exactly (as `--fingerprint`).
    #[serde(default, deserialize_with = "parsed")]
    pub fingerprint: Option<Fingerprint>,
    /// This client's identity for the host (a PEM file, made on first use like the default
    /// one); relative to the qft home, `~` is the home directory.
    pub identity: Option<PathBuf>,
    /// Transfers at once (as `-j`).
    #[serde(default, deserialize_with = "jobs")]
    pub jobs: Option<u16>,
    /// The congestion controller (as `--congestion`).
    #[serde(default, deserialize_with = "parsed")]
    pub congestion: Option<Congestion>,
    /// The stream window (as `--window`): bytes, or a size such as "16M".
    #[serde(default, deserialize_with = "size")]
    pub window: Option<u64>,
    /// The send window (as `--send-window`).
    #[serde(default, deserialize_with = "size")]
    pub send_window: Option<u64>,
    /// The largest UDP payload (as `--max-packet`).
    #[serde(default, deserialize_with = "max_packet")]
    pub max_packet: Option<u16>,
    /// Seconds to wait for the server to answer (as `--timeout`).
    #[serde(default, deserialize_with = "seconds")]
    pub timeout: Option<u64>,
    /// Seconds the server may stall a command (as `--stall-timeout`).
    #[serde(default, deserialize_with = "seconds")]
    pub stall_timeout: Option<u64>,
    /// The most file bytes per second (as `--bwlimit`): bytes, or a rate such as "10M".
    #[serde(default, deserialize_with = "bwlimit")]
    pub bwlimit: Option<u64>,
    /// Compress file bodies where the server can (as `-C`).
    pub compress: Option<bool>,
}

/// The file as TOML sees it: only `host` tables, so that a misspelt table is an error too.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    host: BTreeMap<String, Host>,
}

/// Why `config.toml` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It exists but cannot be read.
    #[error("cannot read {}: {}", .path.display(), describe_io(.source))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It is not what qft understands.
    #[error("{}, line {line}: {message}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where, counted from 1.
        line: usize,
        /// What is wrong, one sentence.
        message: String,
    },
}

impl Config {
    /// Reads `path`; no file means no aliases.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses the text of `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        match toml::from_str::<File>(text) {
            Ok(file) => Ok(Config { hosts: file.host }),
            Err(e) => {
                let at = e.span().map_or(0, |span| span.start).min(text.len());
                Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line: text[..at].matches('\n').count() + 1,
                    message: e.message().trim_end().to_owned(),
                })
            }
        }
    }

    /// The host with this alias, if there is one.
    pub fn host(&self, alias: &str) -> Option<&Host> {
        self.hosts.get(alias)
    }
}

impl Host {
    /// The identity file, if set: `~` is the home directory, and a relative path is in the qft
    /// home `home` (where the default identity lives too).
    pub fn identity_path(&self, home: &Path) -> Option<PathBuf> {
        let given = self.identity.as_ref()?;
        let path = super::local::expand_tilde(&given.to_string_lossy());
        Some(match path.is_absolute() {
            true => path,
            false => home.join(path),
        })
    }
}

/// A value given as text and parsed the way its flag is.
fn parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(D::Error::custom)
}

/// A size: a number of bytes, or text such as "16M".
fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Bytes(u64),
        Text(String),
    }
    match Given::deserialize(d)? {
        Given::Bytes(n) => Ok(Some(n)),
        Given::Text(text) => parse_size(&text).map(Some).map_err(D::Error::custom),
    }
}

/// A whole number within `range`, or the sentence the flag gives.
fn within<'de, D: Deserializer<'de>>(
    d: D,
    range: std::ops::RangeInclusive<u64>,
    what: &str,
) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    match range.contains(&n) {
        true => Ok(n),
        false => Err(D::Error::custom(format!(
            "{what} must be from {} to {}, not {n}",
            range.start(),
            range.end()
        ))),
    }
}

fn jobs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let n = within(d, 1..=u64::from(MAX_JOBS), "jobs")?;
    Ok(Some(n as u16))
}

fn max_packet<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let range = u64::from(MIN_PACKET)..=u64::from(MAX_PACKET);
    Ok(Some(within(d, range, "max_packet")? as u16))
}

/// A bandwidth limit, as `--bwlimit` takes it: a number of bytes per second, or "10M".
fn bwlimit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Bytes(u64),
        Text(String),
    }
    let text = match Given::deserialize(d)? {
        Given::Bytes(n) => n.to_string(),
        Given::Text(text) => text,
    };
    crate::rate::parse_limit(&text)
        .map(Some)
        .map_err(D::Error::custom)
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    within(d, 1..=u64::MAX, "a timeout").map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("config.toml"))
    }

    #[test]
    fn hosts_and_their_settings() {
        let config = parse(
            "# mine\n[host.box]\naddress = \"10.0.0.5:4433\"\njobs = 4\nwindow = \"32M\"\n\
             send_window = 1048576\ncongestion = \"cubic\"\ntimeout = 3\n\n[host.other]\n\
             address = \"other\"\n",
        )
        .unwrap();
        let host = config.host("box").unwrap();
        assert_eq!(host.address, "10.0.0.5:4433");
        assert_eq!(host.jobs, Some(4));
        assert_eq!(host.window, Some(32 << 20));
        assert_eq!(host.send_window, Some(1 << 20));
        assert_eq!(host.congestion, Some(Congestion::Cubic));
        assert_eq!(host.timeout, Some(3));
        assert_eq!(host.max_packet, None);
        assert_eq!(config.host("other").unwrap().jobs, None);
        assert_eq!(config.host("other").unwrap().bwlimit, None);
        assert!(config.host("nope").is_none());
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn bandwidth_and_compression_as_the_flags_take_them() {
        let config = parse(
            "[host.a]\naddress = \"x\"\nbwlimit = \"10M\"\ncompress = true\n\
             [host.b]\naddress = \"y\"\nbwlimit = 65536\n",
        )
        .unwrap();
        let a = config.host("a").unwrap();
        assert_eq!((a.bwlimit, a.compress), (Some(10 << 20), Some(true)));
        let b = config.host("b").unwrap();
        assert_eq!((b.bwlimit, b.compress), (Some(65536), None));
    }

    #[test]
    fn a_mistake_names_its_line() {
        let line = |text: &str| match parse(text) {
            Err(ConfigError::Invalid { line, message, .. }) => (line, message),
            other => panic!("{other:?}"),
        };
        let (at, message) = line("[host.a]\naddress = \"x\"\nwindw = \"1M\"\n");
        assert_eq!(at, 3);
        assert!(message.contains("windw"), "{message}");
        assert_eq!(line("[host.a]\naddress = \"x\"\njobs = 99\n").0, 3);
        assert_eq!(line("[host.a]\n\naddress = \"x\"\nwindow = \"12X\"\n").0, 4);
        assert_eq!(line("[hosts.a]\naddress = \"x\"\n").0, 1);
        assert_eq!(line("[host.a]\njobs = 2\n").0, 1, "no address");
        assert_eq!(
            line("[host.a]\naddress = \"x\"\nfingerprint = \"SHA256:nope\"\n").0,
            3
        );
        assert_eq!(line("[host.a\n").0, 1);
        assert_eq!(line("[host.a]\naddress = \"x\"\nbwlimit = \"0\"\n").0, 3);
        assert_eq!(line("[host.a]\naddress = \"x\"\nbwlimit = \"fast\"\n").0, 3);
        assert_eq!(line("[host.a]\naddress = \"x\"\ncompress = \"yes\"\n").0, 3);
    }
}
