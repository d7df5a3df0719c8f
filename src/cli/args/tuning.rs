//! The network flags both ends take ([`TuningArgs`], into a [`Tuning`]), and sizes shown the way
//! they are typed.

use clap::Args;

use crate::tuning::{parse_size, Congestion, Tuning, MAX_PACKET, MIN_PACKET};

/// How the network is driven, on either end; the defaults are in [`Tuning::default`], chosen
/// from the measurements in BENCHMARKS.md.
#[derive(Debug, Args)]
pub(in crate::cli) struct TuningArgs {
    /// Congestion controller for what this end sends: auto (cubic on a short path, where the
    /// round trip is under 4 ms; bbr elsewhere), bbr, cubic or newreno.
    #[arg(long, global = true, value_name = "NAME", default_value_t = Tuning::default().congestion)]
    congestion: Congestion,
    /// Bytes one transfer may have in flight toward this end (its stream window, e.g. 16M):
    /// a transfer moves at most this per round trip.
    #[arg(long, global = true, value_name = "SIZE",
          default_value_t = Size(Tuning::default().stream_window))]
    window: Size,
    /// Bytes this end may have sent and not yet had acknowledged, per connection (e.g. 8M); on
    /// a path under a 4 ms round trip, no more than twice what 10 Gbit/s needs (at least 2M).
    #[arg(long, global = true, value_name = "SIZE",
          default_value_t = Size(Tuning::default().send_window))]
    send_window: Size,
    /// Largest UDP payload to send, when the path carries it (each connection also stops at its
    /// route's MTU, and path MTU discovery finds out the rest).
    #[arg(long, global = true, value_name = "BYTES", default_value_t = Tuning::default().max_packet,
          value_parser = clap::value_parser!(u16).range(i64::from(MIN_PACKET)..=i64::from(MAX_PACKET)))]
    max_packet: u16,
}

impl TuningArgs {
    pub(in crate::cli) fn tuning(&self) -> Tuning {
        Tuning {
            congestion: self.congestion,
            stream_window: self.window.0,
            send_window: self.send_window.0,
            max_packet: self.max_packet,
        }
    }
}

/// A size given on the command line, shown the way it is typed (`16M`, not 16777216).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Size(u64);

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_size(text).map(Size)
    }
}

impl std::fmt::Display for Size {
    /// The largest suffix that shows it exactly: 16M, 1536K, 1000.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
            if self.0 != 0 && self.0.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{suffix}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_sizes_are_shown_as_they_are_typed() {
        assert_eq!(Size(16 << 20).to_string(), "16M");
        assert_eq!(Size(1536 << 10).to_string(), "1536K");
        assert_eq!(Size(3 << 40).to_string(), "3T");
        assert_eq!(Size(1000).to_string(), "1000");
        assert_eq!(Size(0).to_string(), "0");
        for size in [Size(16 << 20), Size(1000), Size(5 << 30)] {
            assert_eq!(size.to_string().parse::<Size>().unwrap(), size);
        }
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("20G").unwrap(), 20 << 30);
        for bad in ["", "G", "1.5G", "12X", "-1", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
