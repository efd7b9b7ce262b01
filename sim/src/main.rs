//! `boomerang-sim`: generates callers and agents to load-test a boomerang configuration.
fn main() {
    println!("boomerang-sim: scenarios arrive with the simulator issue");
}
