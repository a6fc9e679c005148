//! `pointpipe info FILE... [--json]`: format, version, point count, dropped
//! non-finite points, bounds, attributes and CRS of each file.

use std::path::PathBuf;

use anyhow::bail;
use pointpipe::PointCloud;
use pointpipe::io::{self, ReadReport};

use super::Context;

/// Arguments of `pointpipe info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Point-cloud files to describe (.las, .laz, .ply, .pcd, .bin). A file that
    /// cannot be read is reported and skipped; the exit status is then non-zero.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print one JSON object per file and line (keys: path, format, version, points,
    /// points_in_file, dropped_non_finite, bounds_min, bounds_max [metres or the file's
    /// CRS unit, null when empty], attributes, crs, unit [m, ft, US ft, deg or null]; or path and error). Default: text.
    #[arg(long)]
    pub json: bool,
}

/// Describes every file; errors for single files are printed and counted.
pub fn run(args: Args, _ctx: &Context) -> anyhow::Result<()> {
    let mut failed = 0usize;
    for path in &args.files {
        match io::read_with_report(path) {
            Ok((cloud, report)) => {
                if args.json {
                    println!("{}", json_line(path, &cloud, &report));
                } else {
                    print_text(path, &cloud, &report);
                }
            }
            Err(e) => {
                failed += 1;
                if args.json {
                    let line = serde_json::json!({
                        "path": path.display().to_string(),
                        "error": e.to_string(),
                    });
                    println!("{line}");
                }
                eprintln!("error: {e}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} files could not be read", args.files.len());
    }
    Ok(())
}

fn json_line(path: &std::path::Path, cloud: &PointCloud, report: &ReadReport) -> String {
    let bounds = cloud.bounds();
    serde_json::json!({
        "path": path.display().to_string(),
        "format": report.format.name(),
        "version": report.version,
        "points": cloud.len(),
        "points_in_file": report.points_in_file,
        "dropped_non_finite": report.dropped_non_finite,
        "bounds_min": bounds.map(|(lo, _)| [lo.x, lo.y, lo.z]),
        "bounds_max": bounds.map(|(_, hi)| [hi.x, hi.y, hi.z]),
        "attributes": cloud.attribute_names(),
        "crs": report.crs,
        "unit": report.unit.as_ref().map(|u| u.symbol()),
    })
    .to_string()
}

fn print_text(path: &std::path::Path, cloud: &PointCloud, report: &ReadReport) {
    println!("{}", path.display());
    println!("  format:      {}", report.version);
    println!(
        "  points:      {} ({} in file, {} non-finite dropped)",
        cloud.len(),
        report.points_in_file,
        report.dropped_non_finite
    );
    match cloud.bounds() {
        Some((lo, hi)) => {
            println!("  bounds min:  {:.3} {:.3} {:.3}", lo.x, lo.y, lo.z);
            println!("  bounds max:  {:.3} {:.3} {:.3}", hi.x, hi.y, hi.z);
        }
        None => println!("  bounds:      (empty)"),
    }
    let attributes = cloud.attribute_names();
    println!(
        "  attributes:  {}",
        if attributes.is_empty() {
            "(none)".to_string()
        } else {
            attributes.join(", ")
        }
    );
    println!(
        "  crs:         {}",
        report.crs.as_deref().unwrap_or("(none)")
    );
    match &report.unit {
        Some(unit) => println!("  unit:        {unit}"),
        None => println!("  unit:        (not stated; metres assumed by the defaults)"),
    }
}
