use std::process::ExitCode;

use anyhow::Context;

use super::MakeTestVectorArgs;

pub fn make_test_vector(a: MakeTestVectorArgs) -> anyhow::Result<ExitCode> {
    aero_io::write::raw::write_chunks(
        &a.out,
        [0x11; 16],
        &aero_io::write::raw::test_vector_chunks(),
    )
    .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!("wrote {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
