//! (to be written)

use super::Context;

/// Arguments (to be written).
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _ctx: &Context) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
