//! `pointpipe convert IN OUT`: any readable format to any writable one.

use std::path::PathBuf;

use anyhow::Context as _;
use pointpipe::io;

use super::Context;

/// Arguments of `pointpipe convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input file (.las, .laz, .ply, .pcd, .bin); format from the extension,
    /// checked against the file's magic bytes.
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Output file (.las, .laz, .ply, .pcd, .bin); format from the extension.
    /// Written atomically (temporary file, then rename); must differ from IN.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    #[command(flatten)]
    pub pcd: super::PcdArgs,
}

/// Reads IN, writes OUT, and reports the point count on stderr.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
    io::ensure_not_input(&args.output, &[&args.input])?;
    // Fail on an unknown output extension before reading a large input.
    io::Format::from_path(&args.output)?;
    let start = std::time::Instant::now();
    let (cloud, report) = io::read_with_report(&args.input)?;
    io::write_with_pcd_options(&args.output, &cloud, &args.pcd.options())
        .with_context(|| format!("converting {}", args.input.display()))?;
    if !ctx.quiet {
        eprintln!(
            "{} -> {}: {} points ({} non-finite dropped) in {:.1} ms",
            args.input.display(),
            args.output.display(),
            cloud.len(),
            report.dropped_non_finite,
            super::ms_since(start)
        );
    }
    Ok(())
}
