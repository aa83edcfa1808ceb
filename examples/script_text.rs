//! Prints a sale script as the service loads it into Redis (the helpers of `lua/common.lua` it
//! uses, then its body), for the benches that call a script outside the service:
//!
//!     cargo run --example script_text -- status > status.lua

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    match boxoffice::sale::script_text(&name) {
        Some(text) => print!("{text}"),
        None => {
            eprintln!("no script named {name:?}: the name of a file in lua/, without .lua");
            std::process::exit(2);
        }
    }
}
