//! The opener's table (`tests/fixtures/open-table.json`) through the
//! binary: the same inputs the C ABI and Python tests open, the same
//! answers. `any` is asked of `validate` (files and sets), `set` of
//! `inspect-set`, `file` of `repack`; whether an `any` input opened as a
//! set is asked of `inspect-set`.

use aero_test_support::{Cli, open_table};

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

#[test]
fn every_case_of_the_open_table_answers_as_the_table_says() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = cli();
    let cases = open_table();
    assert!(cases.len() >= 10, "the table lost its cases");
    for (i, c) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("out-{i}.aero"));
        let args: Vec<String> = match c.expect.as_str() {
            "any" => vec!["validate".into(), c.input.clone()],
            "set" => vec!["inspect-set".into(), c.input.clone()],
            "file" => vec!["repack".into(), c.input.clone(), out.display().to_string()],
            other => panic!("unknown expect {other}"),
        };
        let o = cli.run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        let what = format!("{args:?}: exit {:?}, stderr {err}", o.status.code());
        match c.outcome.as_str() {
            "file" | "set" => {
                assert_eq!(o.status.code(), Some(0), "{what}");
                // Opened as what the table says: only a set is an AEROSET.
                let as_set = cli.run(&["inspect-set", c.input.as_str()]);
                assert_eq!(
                    as_set.status.success(),
                    c.outcome == "set",
                    "{what}; inspect-set: {}",
                    String::from_utf8_lossy(&as_set.stderr)
                );
            }
            "wrong-kind" => {
                assert_eq!(o.status.code(), Some(2), "{what}");
                let found = c.found.as_deref().expect("found");
                assert!(err.contains(&format!("is {found}, not ")), "{what}");
                assert!(err.starts_with("aerotensor: error: "), "{what}");
                assert!(!out.exists(), "{what}: wrote an output");
            }
            "not-found" => {
                assert_eq!(o.status.code(), Some(2), "{what}");
                assert!(err.contains("no-such-file.aero"), "{what}");
            }
            "unsupported" => {
                assert_eq!(o.status.code(), Some(2), "{what}");
                assert!(err.contains("ftp://"), "{what}");
            }
            other => panic!("unknown outcome {other}"),
        }
    }
}
