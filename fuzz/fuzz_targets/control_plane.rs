//! `aero_format::ControlPlane::parse` on arbitrary bytes: header, TOC and
//! string table checks; every accepted entry lies inside the file.
#![no_main]
use aero_format::{ControlPlane, FourCc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let Ok(cp) = ControlPlane::parse(data, len) else {
        return;
    };
    let mut n = 0u32;
    for c in cp.entries() {
        n += 1;
        let (start, end) = c.entry.stored_range().expect("checked range");
        assert!(start <= end && end <= len);
        assert_eq!(cp.get(c.index), Some(c));
        let _ = c.shard_id(false);
        let _ = c.shard_id(true);
        let _ = cp.hash_field_offset(c.index);
    }
    assert_eq!(n, cp.len());
    for f in [FourCc::TIDX, FourCc::WTSH, FourCc::MJSN, FourCc::IHSH] {
        let _ = cp.first(f);
    }
    let _ = cp.payload_start();
    // The same bytes through the region-wise entry point agree.
    if let Some(need) = ControlPlane::required_prefix(&cp.header) {
        assert!(need <= len);
    }
});
