//! `headjack-agent`: the in-container agent (see the crate documentation and PROTOCOL.md).

mod agent;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(agent::main(args))
}
