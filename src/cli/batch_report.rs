//! `pointpipe batch-report`: merges the shard reports of a batch output
//! folder (see [`pointpipe::batch::report::merge_reports`]).

use std::path::PathBuf;

use anyhow::Context as _;
use pointpipe::batch::report::merge_reports;

use super::Context;

/// Arguments of `pointpipe batch-report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The output folder of `pointpipe batch` (reads OUTPUT_DIR/_reports/).
    pub output_dir: PathBuf,
    /// Print the merged summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `pointpipe batch-report`; fails (non-zero exit) when a tile failed,
/// a tile is missing (its shard wrote no report) or shards used different
/// parameters.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
    let merged = merge_reports(&args.output_dir)
        .with_context(|| format!("batch-report {}", args.output_dir.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&merged)?);
    } else if !ctx.quiet {
        println!(
            "plan {}: {} tiles in {} shards ({} reported{})",
            merged.plan_fingerprint,
            merged.tiles,
            merged.shard_count,
            merged.shards_reported.len(),
            if merged.shards_missing.is_empty() {
                String::new()
            } else {
                format!(
                    "; no report from shard(s) {}",
                    merged
                        .shards_missing
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        println!(
            "{} done, {} skipped, {} failed, {} missing; {} points in, {} out; \
             {:.2} s slowest shard, {:.2} s summed over shards",
            merged.done,
            merged.skipped,
            merged.failed,
            merged.missing,
            merged.points_in,
            merged.points_out,
            merged.seconds_max,
            merged.seconds_total
        );
        for o in merged.overlaps.iter().take(10) {
            println!(
                "overlap: {} and {} share {:.0} % of the smaller tile (far beyond the halo)",
                o.a,
                o.b,
                o.fraction * 100.0
            );
        }
        if merged.overlaps.len() > 10 {
            println!(
                "overlap: {} more pairs (--json lists them all)",
                merged.overlaps.len() - 10
            );
        }
        for note in &merged.notes {
            println!("note: {note}");
        }
    }
    for f in &merged.failed_tiles {
        eprintln!("failed (shard {}): {}: {}", f.shard, f.name, f.error);
    }
    for name in &merged.missing_tiles {
        eprintln!("missing: {name}");
    }
    if !merged.is_complete() {
        anyhow::bail!(
            "{} failed, {} missing of {} tiles{}",
            merged.failed,
            merged.missing,
            merged.tiles,
            if merged.parameters_differ {
                "; shards ran with different parameters"
            } else {
                ""
            }
        );
    }
    Ok(())
}
