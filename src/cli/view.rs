//! `pointpipe view`: look at point clouds in a 3D window, or render a
//! screenshot (cargo feature `viewer`).

use std::path::{Path, PathBuf};

use pointpipe::PointCloud;
use pointpipe::viewer::{self, ColorMode, Layer, Scene};

use super::Context;

/// Point colouring on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorArg {
    /// Height (z) through a colour map.
    Height,
    /// Intensity (grey ramp); files without intensity keep their own colour.
    Intensity,
    /// Normal direction as RGB; files without normals keep their own colour.
    Normal,
    /// One colour per file.
    File,
}

impl From<ColorArg> for ColorMode {
    fn from(c: ColorArg) -> Self {
        match c {
            ColorArg::Height => ColorMode::Height,
            ColorArg::Intensity => ColorMode::Intensity,
            ColorArg::Normal => ColorMode::Normal,
            ColorArg::File => ColorMode::File,
        }
    }
}

/// Arguments of `pointpipe view`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!(
    "Keys: {}\n\nWithout a display or GPU, run headless:\n  xvfb-run -a -s '-screen 0 1280x800x24' pointpipe view FILE... --screenshot OUT.png",
    viewer::KEY_HELP
))]
pub struct Args {
    /// Point-cloud files (LAS, LAZ, PLY, PCD, KITTI .bin); each is one layer in its own colour.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Point colouring (the C key cycles through them).
    #[arg(long, value_enum, default_value_t = ColorArg::File)]
    pub color: ColorArg,
    /// Point size in pixels.
    #[arg(long, value_name = "S", default_value_t = viewer::DEFAULT_POINT_SIZE)]
    pub point_size: f32,
    /// Display budget per file: larger clouds are voxel-decimated for display (title says so).
    #[arg(long, value_name = "N", default_value_t = viewer::DEFAULT_MAX_POINTS)]
    pub max_points: usize,
    /// Render one frame to this PNG and exit instead of opening a window.
    #[arg(long, value_name = "OUT.png")]
    pub screenshot: Option<PathBuf>,
    /// Window / screenshot size in pixels, WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", default_value = "1280x800", value_parser = parse_size)]
    pub size: (u32, u32),
}

/// Runs `pointpipe view`.
pub fn run(args: Args, _ctx: &Context) -> anyhow::Result<()> {
    if !args.point_size.is_finite() || args.point_size <= 0.0 {
        anyhow::bail!(
            "--point-size must be a positive number of pixels, got {}",
            args.point_size
        );
    }
    if args.max_points == 0 {
        anyhow::bail!("--max-points must be at least 1");
    }
    if args.screenshot.is_none() {
        // Fail before reading possibly large files.
        viewer::check_display()?;
    }
    let mut scene = Scene {
        color_mode: args.color.into(),
        point_size: args.point_size,
        ..Scene::default()
    };
    let mut names = Vec::new();
    for (i, path) in args.files.iter().enumerate() {
        let cloud = read_cloud(path)?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let layer = Layer::from_cloud(&name, &cloud, viewer::color::palette(i), args.max_points);
        log::info!(
            "{}: {} points, {} shown",
            path.display(),
            layer.source_len,
            layer.points.len()
        );
        names.push(name);
        scene.add_layer(layer);
    }
    scene.title = format!("pointpipe view: {}", names.join(", "));
    let (width, height) = args.size;
    match &args.screenshot {
        Some(out) => {
            viewer::render_screenshot(&scene, width, height, out)?;
            println!("screenshot written to {} ({width}x{height})", out.display());
        }
        None => {
            viewer::show(scene, width, height)?;
        }
    }
    Ok(())
}

/// Reads one cloud with the library's format dispatch.
fn read_cloud(path: &Path) -> anyhow::Result<PointCloud> {
    Ok(pointpipe::io::read(path)?)
}

/// Parses `WIDTHxHEIGHT`, each 16–16384 pixels.
fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, got '{s}'"))?;
    let parse = |v: &str| -> Result<u32, String> {
        let n: u32 = v.trim().parse().map_err(|e| format!("'{v}': {e}"))?;
        if (16..=16384).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} pixels is outside 16-16384"))
        }
    };
    Ok((parse(w)?, parse(h)?))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1280x800"), Ok((1280, 800)));
        assert_eq!(parse_size("64X48"), Ok((64, 48)));
        assert!(parse_size("1280").is_err());
        assert!(parse_size("0x10").is_err());
        assert!(parse_size("axb").is_err());
    }
}
