//! One file per subcommand: a `clap::Args` struct and a `run` function that
//! calls the library and prints the result.

pub mod batch;
pub mod batch_report;
pub mod convert;
pub mod demo;
pub mod downsample;
pub mod info;
pub mod neighbors;
pub mod normals;
pub mod odometry;
pub mod query;
pub mod register;
pub mod serve;
pub mod simulate;
#[cfg(feature = "viewer")]
pub mod view;

/// Options shared by every subcommand.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// `-q`: no progress bars, only errors.
    pub quiet: bool,
}

/// `--pcd-double`, flattened into every command that writes a cloud.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct PcdArgs {
    /// PCD output: store x y z as float64 (`SIZE 8`) instead of float32
    /// around a local origin recorded in the header (the default, which warns
    /// when float32 loses more than the data's precision). PCL and Open3D read
    /// only float32 coordinates (Open3D reads float64 ones as zeros).
    #[arg(long)]
    pub pcd_double: bool,
}

impl PcdArgs {
    /// The library's PCD options for these flags.
    pub fn options(&self) -> pointpipe::io::pcd::PcdOptions {
        pointpipe::io::pcd::PcdOptions {
            double: self.pcd_double,
        }
    }
}

/// Milliseconds elapsed since `start`.
pub fn ms_since(start: std::time::Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// A progress bar on stderr, hidden with `-q` or when stderr is not a terminal.
pub fn progress_bar(len: u64, unit: &str, ctx: &Context) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if ctx.quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}}");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
