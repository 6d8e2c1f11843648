//! IHSH and PHSH payload decoders, the bounded MessagePack token reader and
//! the MessagePack → JSON conversion (output linear in the input).
#![no_main]
use aero_format::Field;
use aero_format::msgpack::Reader;
use aero_io::write::raw::{decode_ihsh, decode_phsh, encode_ihsh, encode_phsh};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(i) = decode_ihsh(data)
        && let [(0, p)] = i.ranges[..]
    {
        assert_eq!(
            decode_ihsh(&encode_ihsh(p, &i.digest)).expect("re-encoded IHSH"),
            i
        );
    }
    if let Ok(p) = decode_phsh(data) {
        assert!(p.digests.len() * 34 <= data.len());
        assert_eq!(decode_phsh(&encode_phsh(&p)).expect("re-encoded PHSH"), p);
    }
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
