//! IHSH and PHSH payload decoders (aero-format's borrowing ones and
//! aero-io's owned PHSH), the control-digest input, the bounded MessagePack
//! token reader and the MessagePack → JSON conversion (output linear in the
//! input).
#![no_main]
use aero_format::Field;
use aero_format::encode::{encode_ihsh, encode_phsh};
use aero_format::ihsh::{DigestInput, Ihsh};
use aero_format::msgpack::Reader;
use aero_format::phsh::Phsh;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(i) = Ihsh::parse(data) {
        let ranges: Vec<(u64, u64)> = i.ranges().collect();
        assert!(ranges.len() * 3 <= data.len());
        if let [(0, p)] = ranges[..] {
            assert!(i.covers_prologue(p));
            let again = encode_ihsh(p, &i.digest);
            let j = Ihsh::parse(&again).expect("re-encoded IHSH");
            assert_eq!(
                (j.ranges().collect::<Vec<_>>(), j.digest),
                (ranges, i.digest)
            );
        }
    }
    if let Ok(p) = Phsh::parse(data) {
        assert!(p.digests().len() * 34 <= data.len());
        let digests: Vec<[u8; 32]> = p.digests().copied().collect();
        let q = encode_phsh(p.shard_name, p.page_size, &digests);
        let q = Phsh::parse(&q).expect("re-encoded PHSH");
        let q_digests: Vec<[u8; 32]> = q.digests().copied().collect();
        assert_eq!((q.shard_name, q.page_size), (p.shard_name, p.page_size));
        assert_eq!(q_digests, digests);
        let owned = aero_io::write::raw::decode_phsh(data).expect("owned PHSH decodes");
        assert_eq!(owned.digests, digests);
    }
    // The control-digest input is the input, hash fields replaced, in order.
    let count = u32::from(data.first().copied().unwrap_or(0));
    let mut at = 0;
    for piece in DigestInput::new(data, 7, count) {
        if piece.iter().any(|&b| b != 0) || piece.len() != 32 {
            assert_eq!(piece, &data[at..at + piece.len()]);
        }
        at += piece.len();
    }
    assert_eq!(at, data.len());
    let mut r = Reader::new(data);
    while r.remaining() > 0 {
        let at = r.position();
        match r.skip(Field::MsgPack) {
            Ok(raw) => assert_eq!(raw.len(), r.position() - at),
            Err(_) => break,
        }
    }
    if let Ok(v) = aero_io::meta::msgpack_to_json(data) {
        let text = serde_json::to_string(&v).expect("JSON text");
        // Linear: hex doubles bytes and escapes take at most six per byte.
        assert!(
            text.len() <= 64 * data.len() + 64,
            "{} -> {}",
            data.len(),
            text.len()
        );
        let canon = aero_io::meta::canonical_json(&v);
        let back: serde_json::Value = serde_json::from_str(&canon).expect("canonical JSON parses");
        assert_eq!(aero_io::meta::canonical_json(&back), canon);
    }
});
