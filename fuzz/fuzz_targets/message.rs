//! Message decoding on arbitrary bytes: never panics, and whatever decodes re-encodes to the same
//! bytes and decodes again to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qft::protocol::frame::{decode, encode};
use qft::protocol::{Message, Request, Response, Trailer};

fn check<T: Message + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(msg) = decode::<T>(data) {
        let bytes = encode(&msg).unwrap();
        assert_eq!(&bytes[4..], data);
        assert_eq!(decode::<T>(&bytes[4..]).unwrap(), msg);
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Request>(data);
    check::<Response>(data);
    check::<Trailer>(data);
});
