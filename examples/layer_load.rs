//! Times loading a layer file the way `pointpipe serve` (re)loads it: file
//! read and parse, then the index build (and the attributes' rendering), as
//! [`Layer::load`] reports them, REPEAT times on a rayon pool of THREADS
//! threads.
//!
//! `cargo run --release --example layer_load -- FILE [REPEAT] [THREADS]`
use pointpipe::layer::{Layer, LayerSpec};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(file) = args.get(1) else {
        anyhow::bail!("usage: layer_load FILE [REPEAT] [THREADS]");
    };
    let repeat: usize = args.get(2).map_or(Ok(5), |r| r.parse())?;
    let threads: usize = args.get(3).map_or(Ok(0), |t| t.parse())?;
    let spec: LayerSpec = format!("layer={file}").parse()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    println!("{file}: {} threads", pool.current_num_threads());
    for i in 0..repeat {
        let started = std::time::Instant::now();
        let layer = pool.install(|| Layer::load(&spec, 1))?;
        println!(
            "run {i}: {} points, read {:.1} ms, build {:.1} ms, total {:.1} ms; index {:.1} B/point",
            layer.len(),
            layer.load_ms,
            layer.build_ms,
            started.elapsed().as_secs_f64() * 1e3,
            layer.index_bytes() as f64 / layer.len().max(1) as f64
        );
    }
    Ok(())
}
