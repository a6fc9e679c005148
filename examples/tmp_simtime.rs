// Throwaway (not committed): CPU time per simulated frame.
use pointpipe::simulate::{SimulationConfig, Simulator};
fn cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
fn main() {
    let threads: usize = std::env::args().nth(1).map(|a| a.parse().unwrap()).unwrap_or(1);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let sim = Simulator::new(&SimulationConfig::default()).unwrap();
    let (c0, w0) = (cpu_s(), std::time::Instant::now());
    let mut pts = 0;
    let n = 40;
    for i in 0..n { pts += pool.install(|| sim.frame(i * 5)).len(); }
    let (c1, w1) = (cpu_s(), w0.elapsed().as_secs_f64());
    println!("threads {threads}: cpu {:.1} ms/frame, wall {:.1} ms/frame, {} pts/frame", (c1 - c0) * 1e3 / n as f64, w1 * 1e3 / n as f64, pts / n);
}
