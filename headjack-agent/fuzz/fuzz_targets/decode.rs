//! Arbitrary bytes, fed in arbitrary pieces, through the frame decoder and the message
//! decoder: no panic, the buffer stays bounded, and whatever decodes re-encodes to itself.
#![no_main]

use headjack_agent::proto::{Decoder, HEADER_LEN, Message};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // The first byte sets the piece size, so frames arrive split at every boundary.
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let mut dec = Decoder::new(MAX);
    for piece in rest.chunks(usize::from(step).max(1)) {
        dec.feed(piece);
        assert!(dec.buffered() <= HEADER_LEN + MAX + piece.len() + 2);
        while let Some(frame) = dec.next_frame() {
            let Ok(f) = frame else { continue };
            assert!(f.payload.len() <= MAX);
            if let Ok(m) = Message::decode(f.kind, &f.payload) {
                let again = m.to_frame(f.stream).expect("a decoded message re-encodes");
                assert_eq!(Message::decode(f.kind, &again[HEADER_LEN..]).unwrap(), m);
            }
        }
    }
});
