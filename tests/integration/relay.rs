//! An in-process UDP relay between a client and a server on loopback, which drops, delays,
//! reorders and blacks out packets on command: a lossy network without root or netem.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::net::UdpSocket;

/// What the relay does to each packet, in both directions.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Probability of dropping a packet.
    pub loss: f64,
    /// Fixed delay per packet.
    pub delay: Duration,
    /// Extra random delay up to this much: packets overtake each other.
    pub jitter: Duration,
    /// Drop everything.
    pub blackout: bool,
}

/// Counts of what the relay did, to check a test really exercised the faults.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub forwarded: u64,
    pub dropped: u64,
}

pub struct Relay {
    pub addr: SocketAddr,
    pub faults: Arc<Mutex<Faults>>,
    pub counts: Arc<Mutex<Counts>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// A relay on 127.0.0.1 in front of `server`, for one client at a time.
    pub async fn start(server: SocketAddr, faults: Faults) -> Relay {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        back.connect(server).await.unwrap();
        let addr = front.local_addr().unwrap();
        let faults = Arc::new(Mutex::new(faults));
        let counts = Arc::new(Mutex::new(Counts::default()));
        let (f, c) = (faults.clone(), counts.clone());
        let task = tokio::spawn(async move {
            let mut client: Option<SocketAddr> = None;
            let (mut up, mut down) = (vec![0u8; 65536], vec![0u8; 65536]);
            loop {
                tokio::select! {
                    Ok((n, from)) = front.recv_from(&mut up) => {
                        client = Some(from);
                        let packet = up[..n].to_vec();
                        let back = back.clone();
                        forward(&f, &c, move || async move { let _ = back.send(&packet).await; });
                    }
                    Ok(n) = back.recv(&mut down) => {
                        let Some(to) = client else { continue };
                        let packet = down[..n].to_vec();
                        let front = front.clone();
                        forward(&f, &c, move || async move { let _ = front.send_to(&packet, to).await; });
                    }
                }
            }
        });
        Relay {
            addr,
            faults,
            counts,
            task,
        }
    }

    pub fn set(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.faults.lock().unwrap());
    }

    pub fn counts(&self) -> Counts {
        *self.counts.lock().unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn forward<F, Fut>(faults: &Mutex<Faults>, counts: &Mutex<Counts>, send: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = faults.lock().unwrap().clone();
    let mut rng = rand::rng();
    if f.blackout || rng.random_bool(f.loss.clamp(0.0, 1.0)) {
        counts.lock().unwrap().dropped += 1;
        return;
    }
    counts.lock().unwrap().forwarded += 1;
    let jitter = if f.jitter.is_zero() {
        Duration::ZERO
    } else {
        rng.random_range(Duration::ZERO..f.jitter)
    };
    let wait = f.delay + jitter;
    tokio::spawn(async move {
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        send().await;
    });
}
