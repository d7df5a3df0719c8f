//! WebTransport streams as the transfer layer's ends and as the dispatcher's stream halves, so
//! the command handlers move file bodies over a browser's streams exactly as over a QUIC
//! client's (see `transfer::adapters` and `server::dispatch`).

use std::io;

use bytes::Bytes;
use web_transport_quinn::{RecvStream, SendStream};

use crate::server::dispatch::{RecvEnd, SendEnd};
use crate::transfer::{Block, Sink, Source};

impl Source for RecvStream {
    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let mut pieces = Vec::new();
        let mut got = 0;
        // Never more than `max`: what follows a body on the stream (its trailer) is not ours.
        while got < max {
            match self
                .read_chunk(max - got, true)
                .await
                .map_err(io::Error::other)?
            {
                Some(chunk) => {
                    got += chunk.bytes.len();
                    pieces.push(chunk.bytes);
                }
                None => break,
            }
        }
        Ok(pieces)
    }
}

impl Sink for SendStream {
    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        let mut pieces = block.to_vec();
        self.write_all_chunks(&mut pieces)
            .await
            .map_err(io::Error::other)
    }
}

impl SendEnd for SendStream {
    fn end(&mut self) {
        let _ = self.finish();
    }

    fn abandon(&mut self, code: u32) {
        let _ = self.reset(code);
    }

    async fn delivered(&mut self) {
        let _ = self.stopped().await;
    }
}

impl RecvEnd for RecvStream {
    fn refuse_rest(&mut self, code: u32) {
        let _ = self.stop(code);
    }
}
