//! [`Capped`]: another controller, its window held to a multiple of the path's measured
//! bandwidth-delay product.
//!
//! quinn's BBR keeps sending on a lossy path where loss-based controllers collapse, which is
//! why it is qft's default. But on netlab's wan (50 ms, 1% loss, 500 Mbit/s) its window grew to
//! 20 MB, six times the path's 3 MB bandwidth-delay product: the surplus filled the bottleneck's
//! queue and was dropped there: 47% of the packets qft sent were lost, and it sent 1.9 times the
//! file to move it once. BBR as specified caps its window at a multiple of its estimate of that
//! product; [`Capped`] restores such a bound from outside, from what the acknowledgements show
//! was delivered. Measured there (256 MiB uploads): the same 40-45 MB/s, with 1% of packets
//! lost (the path's own loss) at a gain of 1.5, 14% at 2, 33% at 3; on loopback no change.
//!
//! While the rate still grows, the cap's gain is [`STARTUP_GAIN`] instead: a rate sample covers
//! the round trip before it, so the window it allows trails the one that was sent by about a
//! round and a half, and at 1.5 the window could grow only ~1.3× per round trip. On the wan
//! that held the first second of every transfer to a fraction of the line (a 1 GiB upload
//! reached the line's rate after 1.1 s, 0.9 s of it lost to the climb), though BBR's own
//! window was well ahead. Like BBR's start-up, the climb ends after [`FULL_ROUNDS`] samples in
//! a row without 25% growth, or at once after a round that lost more than [`CLIMB_LOSS`]; from
//! then on the cap holds at [`GAIN`].

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::congestion::{Controller, ControllerFactory, ControllerMetrics};
use quinn_proto::RttEstimator;

/// The window, as a multiple of delivery rate × minimum round trip: the data the path holds in
/// flight, plus half as much again queued at its bottleneck. That half is also what lets the
/// rate grow, by half per round trip, while the path has room. (BBR's own gain, 2, still
/// overflowed the emulated bottleneck's queue: see above.)
const GAIN: f64 = 1.5;

/// The cap's gain while the delivery rate still grows (see the module): BBRv3's start-up
/// window gain. The window it allows at the end of the climb is twice the path's product, one
/// product queued at the bottleneck, for at most [`FULL_ROUNDS`] round trips.
const STARTUP_GAIN: f64 = 2.0;

/// The share of a round's bytes whose loss ends the climb at once: the bottleneck's queue
/// overflowed. Well above a lossy path's own random loss (netlab's wan: 1%), which at the
/// climb's first small rounds (~170 packets) can reach 2-3% by chance.
const CLIMB_LOSS: f64 = 0.05;

/// Samples in a row without [`GROWTH`] that end the climb (BBR's own count).
const FULL_ROUNDS: u8 = 3;

/// How much a sample must beat the best before it to count as growth (BBR's 25%).
const GROWTH: f64 = 1.25;

/// Delivery-rate samples kept (about one per round trip): the window follows the best of them,
/// so a pause in the data (nothing to send for a moment) does not shrink it.
const SAMPLES: usize = 10;

/// Builds [`Capped`] controllers around those of `inner`.
pub struct CappedFactory(pub Arc<dyn ControllerFactory + Send + Sync>);

impl ControllerFactory for CappedFactory {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(Capped::new(self.0.clone().build(now, current_mtu)))
    }
}

/// Another controller, its window bounded by [`GAIN`] (while the rate still climbs,
/// [`STARTUP_GAIN`]) × the best recent delivery rate × the minimum round trip. Until the first
/// rate sample, the inner window stands.
pub struct Capped {
    inner: Box<dyn Controller>,
    /// Where the current delivery-rate interval began, and the bytes acknowledged since.
    interval: Option<(Instant, u64)>,
    /// Bytes declared lost since the current interval began.
    lost: u64,
    /// Recent delivery rates, bytes per second.
    rates: VecDeque<f64>,
    min_rtt: Duration,
    /// While the rate still climbs: the best sample so far and the samples since it that did
    /// not beat it by [`GROWTH`]. `None` once the climb is over, for good.
    climb: Option<(f64, u8)>,
}

impl Capped {
    /// `inner`, bounded once acknowledgements show a delivery rate.
    pub fn new(inner: Box<dyn Controller>) -> Self {
        Capped {
            inner,
            interval: None,
            lost: 0,
            rates: VecDeque::with_capacity(SAMPLES),
            min_rtt: Duration::ZERO,
            climb: Some((0.0, 0)),
        }
    }

    /// Counts `bytes` acknowledged at `now`, and closes a delivery-rate sample once a round
    /// trip has passed since the last.
    fn delivered(&mut self, now: Instant, bytes: u64, app_limited: bool, min_rtt: Duration) {
        self.min_rtt = min_rtt;
        let (start, acked) = self.interval.get_or_insert((now, 0));
        *acked += bytes;
        let (start, acked) = (*start, *acked);
        let elapsed = now.saturating_duration_since(start);
        // One sample per round trip: shorter intervals measure the burstiness of acks.
        if elapsed >= self.min_rtt.max(Duration::from_millis(1)) {
            let rate = acked as f64 / elapsed.as_secs_f64();
            // A sender with nothing to send shows the application's rate, not the path's.
            if !app_limited || self.best_rate().is_none_or(|best| rate > best) {
                if self.rates.len() == SAMPLES {
                    self.rates.pop_front();
                }
                self.rates.push_back(rate);
            }
            let lost_share = self.lost as f64 / (acked + self.lost) as f64;
            // Only a sender that had data to send shows that the path stopped growing.
            if !app_limited {
                self.climbed(rate, lost_share);
            }
            self.interval = Some((now, 0));
            self.lost = 0;
        }
    }

    /// Ends the climb after [`FULL_ROUNDS`] samples in a row that did not grow by [`GROWTH`],
    /// or at once after a round that lost more than [`CLIMB_LOSS`] of what it carried.
    fn climbed(&mut self, rate: f64, lost_share: f64) {
        let Some((best, flat)) = &mut self.climb else {
            return;
        };
        if rate >= *best * GROWTH {
            *best = rate;
            *flat = 0;
        } else {
            *flat += 1;
        }
        let overflowed = lost_share > CLIMB_LOSS;
        if overflowed || *flat >= FULL_ROUNDS {
            tracing::debug!(
                rate_mb_s = *best / 1e6,
                min_rtt = ?self.min_rtt,
                overflowed,
                "the climb is over: window cap at its steady gain"
            );
            self.climb = None;
        }
    }

    fn best_rate(&self) -> Option<f64> {
        self.rates.iter().copied().reduce(f64::max)
    }

    /// The bound on the window, once there is a rate to base it on.
    fn cap(&self) -> Option<u64> {
        let rate = self.best_rate()?;
        let bdp = rate * self.min_rtt.as_secs_f64();
        let gain = if self.climb.is_some() {
            STARTUP_GAIN
        } else {
            GAIN
        };
        Some(((gain * bdp) as u64).max(self.inner.initial_window()))
    }
}

impl Controller for Capped {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.inner.on_sent(now, bytes, last_packet_number);
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    ) {
        self.inner.on_ack(now, sent, bytes, app_limited, rtt);
        self.delivered(now, bytes, app_limited, rtt.min());
    }

    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.inner
            .on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        lost_bytes: u64,
    ) {
        self.lost += lost_bytes;
        self.inner
            .on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.inner.on_mtu_update(new_mtu);
    }

    fn window(&self) -> u64 {
        let window = self.inner.window();
        self.cap().map_or(window, |cap| window.min(cap))
    }

    fn metrics(&self) -> ControllerMetrics {
        let mut metrics = self.inner.metrics();
        metrics.congestion_window = self.window();
        metrics
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(Capped {
            inner: self.inner.clone_box(),
            interval: self.interval,
            lost: self.lost,
            rates: self.rates.clone(),
            min_rtt: self.min_rtt,
            climb: self.climb,
        })
    }

    fn initial_window(&self) -> u64 {
        self.inner.initial_window()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A controller whose own window never stops anything.
    #[derive(Clone)]
    struct Open;

    impl Controller for Open {
        fn on_congestion_event(&mut self, _: Instant, _: Instant, _: bool, _: u64) {}
        fn on_mtu_update(&mut self, _: u16) {}
        fn window(&self) -> u64 {
            u64::MAX
        }
        fn clone_box(&self) -> Box<dyn Controller> {
            Box::new(self.clone())
        }
        fn initial_window(&self) -> u64 {
            14_720
        }
        fn into_any(self: Box<Self>) -> Box<dyn Any> {
            self
        }
    }

    /// Acknowledges `per_ms` bytes every millisecond for `ms` milliseconds from `t`.
    fn deliver(c: &mut Capped, t: &mut Instant, ms: u64, per_ms: u64, rtt: Duration) {
        for _ in 0..ms {
            *t += Duration::from_millis(1);
            c.delivered(*t, per_ms, false, rtt);
        }
    }

    #[test]
    fn the_window_follows_the_delivery_rate_times_the_round_trip() {
        let mut c = Capped::new(Box::new(Open));
        assert_eq!(
            c.window(),
            u64::MAX,
            "no sample yet: the inner window stands"
        );
        let rtt = Duration::from_millis(50);
        let mut t = Instant::now();
        // 50 MB/s for ten round trips: a bandwidth-delay product of 2.5 MB.
        deliver(&mut c, &mut t, 500, 50_000, rtt);
        let bdp = 50e6 * 0.05;
        let window = c.window() as f64;
        assert!(
            (window - GAIN * bdp).abs() < 0.05 * GAIN * bdp,
            "window {window} for a product of {bdp}"
        );
    }

    #[test]
    fn a_pause_does_not_shrink_the_window_and_the_best_recent_rate_counts() {
        let mut c = Capped::new(Box::new(Open));
        let rtt = Duration::from_millis(20);
        let mut t = Instant::now();
        deliver(&mut c, &mut t, 100, 40_000, rtt);
        let fast = c.window();
        // The sender had little to send for a while: app-limited samples are not the path's.
        for _ in 0..100 {
            t += Duration::from_millis(1);
            c.delivered(t, 1_000, true, rtt);
        }
        assert_eq!(c.window(), fast);
        // A slower path for longer than the samples kept: the window comes down to it.
        deliver(&mut c, &mut t, 20 * (SAMPLES as u64 + 1), 10_000, rtt);
        assert!(c.window() < fast / 3, "{} vs {fast}", c.window());
        // Never below the inner controller's initial window, however slow.
        deliver(&mut c, &mut t, 20 * (SAMPLES as u64 + 1), 1, rtt);
        assert_eq!(c.window(), 14_720);
    }

    /// One delivery-rate sample per rate (bytes per second): each a round trip's worth of
    /// bytes acknowledged at once, a round trip after the last.
    fn samples(c: &mut Capped, t: &mut Instant, rtt: Duration, rates: &[f64]) {
        if c.interval.is_none() {
            c.delivered(*t, 0, false, rtt);
        }
        for rate in rates {
            *t += rtt;
            c.delivered(*t, (rate * rtt.as_secs_f64()) as u64, false, rtt);
        }
    }

    /// The cap's gain over the best rate's product, as the window shows it.
    fn gain_now(c: &Capped, rtt: Duration) -> f64 {
        c.window() as f64 / (c.best_rate().unwrap() * rtt.as_secs_f64())
    }

    #[test]
    fn while_the_rate_climbs_the_cap_allows_the_start_up_gain_then_the_steady_one() {
        let mut c = Capped::new(Box::new(Open));
        let rtt = Duration::from_millis(20);
        let mut t = Instant::now();
        // The rate doubles every round trip: still climbing.
        samples(&mut c, &mut t, rtt, &[1e6, 2e6, 4e6, 8e6, 16e6]);
        assert!(c.climb.is_some());
        let climbing = gain_now(&c, rtt);
        assert!((climbing - STARTUP_GAIN).abs() < 0.01, "gain {climbing}");
        // Growth under 25% is not growth; two such round trips are not yet the end (a pause in
        // the acks looks like one)...
        samples(&mut c, &mut t, rtt, &[16e6, 19e6]);
        assert!(c.climb.is_some());
        // ...the third is: from then on the cap holds at the steady gain, for good.
        samples(&mut c, &mut t, rtt, &[17e6]);
        assert!(c.climb.is_none());
        let steady = gain_now(&c, rtt);
        assert!((steady - GAIN).abs() < 0.01, "gain {steady}");
        samples(&mut c, &mut t, rtt, &[40e6, 80e6]);
        assert!((gain_now(&c, rtt) - GAIN).abs() < 0.01);
    }

    #[test]
    fn a_round_that_overflows_the_queue_ends_the_climb_at_once() {
        let mut c = Capped::new(Box::new(Open));
        let rtt = Duration::from_millis(20);
        let mut t = Instant::now();
        samples(&mut c, &mut t, rtt, &[1e6]);
        // A random loss well under CLIMB_LOSS (1%) while the rate still doubles: the climb
        // goes on.
        c.on_congestion_event(t, t, false, 400);
        samples(&mut c, &mut t, rtt, &[2e6]);
        assert!(c.climb.is_some());
        // A round that lost a tenth of what it carried, though its rate doubled again.
        c.on_congestion_event(t, t, false, 9_000);
        samples(&mut c, &mut t, rtt, &[4e6]);
        assert!(c.climb.is_none());
        assert!((gain_now(&c, rtt) - GAIN).abs() < 0.01);
    }
}
