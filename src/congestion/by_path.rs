//! [`ByPath`]: one controller for a short path, another for a long one.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::congestion::{Controller, ControllerFactory, ControllerMetrics};
use quinn_proto::RttEstimator;

/// Builds [`ByPath`] controllers: `short` where the path's round trip proves short, `long`
/// until then.
pub struct ByPathFactory {
    /// For a short path (a LAN, loopback): cubic.
    pub short: Arc<dyn ControllerFactory + Send + Sync>,
    /// For any other: capped BBR.
    pub long: Arc<dyn ControllerFactory + Send + Sync>,
}

impl ControllerFactory for ByPathFactory {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(ByPath {
            short: self.short.clone().build(now, current_mtu),
            long: Some(self.long.clone().build(now, current_mtu)),
        })
    }
}

/// A round trip below which a path counts as short: a LAN's is well under a millisecond, a
/// metropolitan link's a few, the emulated wan's 50.
pub const SHORT_PATH: Duration = Duration::from_millis(4);

/// One controller for a short path, another for a long one, chosen by the smallest round trip
/// seen. Until a round trip under [`SHORT_PATH`] is seen, `long` decides and `short` follows
/// every event too, so it is ready; once one is seen (the minimum only falls), `short` decides
/// for the rest of the connection and `long` is dropped.
///
/// Why: on loopback and a LAN, capped BBR's pacing cut quinn's GSO batches (8.4 datagrams per
/// send instead of 10) and cubic moved more per CPU second; on a lossy long path cubic
/// collapses where BBR holds its rate (BENCHMARKS.md).
pub struct ByPath {
    short: Box<dyn Controller>,
    /// `None` once the path proved short.
    long: Option<Box<dyn Controller>>,
}

impl ByPath {
    fn active(&self) -> &dyn Controller {
        self.long.as_deref().unwrap_or(&*self.short)
    }

    /// Hands over to `short` for good once the smallest round trip is under [`SHORT_PATH`].
    fn observe(&mut self, min_rtt: Duration) {
        if min_rtt < SHORT_PATH {
            self.long = None;
        }
    }
}

impl Controller for ByPath {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.short.on_sent(now, bytes, last_packet_number);
        if let Some(long) = &mut self.long {
            long.on_sent(now, bytes, last_packet_number);
        }
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    ) {
        self.short.on_ack(now, sent, bytes, app_limited, rtt);
        if let Some(long) = &mut self.long {
            long.on_ack(now, sent, bytes, app_limited, rtt);
        }
        self.observe(rtt.min());
    }

    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.short
            .on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
        if let Some(long) = &mut self.long {
            long.on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
        }
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        lost_bytes: u64,
    ) {
        self.short
            .on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
        if let Some(long) = &mut self.long {
            long.on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
        }
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.short.on_mtu_update(new_mtu);
        if let Some(long) = &mut self.long {
            long.on_mtu_update(new_mtu);
        }
    }

    fn window(&self) -> u64 {
        self.active().window()
    }

    fn metrics(&self) -> ControllerMetrics {
        self.active().metrics()
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(ByPath {
            short: self.short.clone_box(),
            long: self.long.as_ref().map(|l| l.clone_box()),
        })
    }

    fn initial_window(&self) -> u64 {
        self.active().initial_window()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A controller with a fixed window, to tell which one decides.
    #[derive(Clone)]
    struct Fixed(u64);

    impl Controller for Fixed {
        fn on_congestion_event(&mut self, _: Instant, _: Instant, _: bool, _: u64) {}
        fn on_mtu_update(&mut self, _: u16) {}
        fn window(&self) -> u64 {
            self.0
        }
        fn clone_box(&self) -> Box<dyn Controller> {
            Box::new(self.clone())
        }
        fn initial_window(&self) -> u64 {
            self.0
        }
        fn into_any(self: Box<Self>) -> Box<dyn Any> {
            self
        }
    }

    #[test]
    fn by_path_keeps_the_long_path_controller_until_a_short_round_trip_is_seen() {
        let mut c = ByPath {
            short: Box::new(Fixed(1)),
            long: Some(Box::new(Fixed(2))),
        };
        assert_eq!(
            c.window(),
            2,
            "no round trip yet: the long-path controller decides"
        );
        c.observe(Duration::from_millis(50));
        assert_eq!(
            c.window(),
            2,
            "a 50 ms path stays with the long-path controller"
        );
        c.observe(SHORT_PATH / 4);
        assert_eq!(c.window(), 1, "a short round trip hands over for good");
        c.observe(Duration::from_millis(80));
        assert_eq!(c.window(), 1);
    }
}
