//! The frame reader on an arbitrary byte stream: never panics, never over-allocates, and what it
//! accepts is exactly the canonical frame of the message it returns.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use qft::protocol::{encode_frame, read_frame, Message, Request, Response, Trailer};

/// Runs a future that never waits (reading from a byte slice is always ready).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn check<T: Message + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let mut reader = data;
    if let Ok(msg) = ready(read_frame::<T, _>(&mut reader)) {
        let consumed = data.len() - reader.len();
        assert_eq!(encode_frame(&msg).unwrap(), &data[..consumed]);
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Request>(data);
    check::<Response>(data);
    check::<Trailer>(data);
});
