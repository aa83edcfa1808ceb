//! Prints a sale script as the service loads it into Redis (the helpers of `lua/common.lua` it
//! uses, then its body), for the benches that call a script outside the service:
//!
//!     cargo run --example script_text -- status > status.lua
//!
//! or, given a `common.lua` and a script body (another revision's), that script as this
//! service would load it:
//!
//!     cargo run --example script_text -- --files common.lua status.lua > status.lua

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = match &args[..] {
        [flag, common, body] if flag == "--files" => {
            let read = |path: &str| {
                std::fs::read_to_string(path).unwrap_or_else(|e| {
                    eprintln!("{path}: {e}");
                    std::process::exit(2)
                })
            };
            Some(boxoffice::sale::assemble_script(&read(common), &read(body)))
        }
        [name] => boxoffice::sale::script_text(name),
        _ => None,
    };
    match text {
        Some(text) => print!("{text}"),
        None => {
            eprintln!("usage: script_text <name of a file in lua/, without .lua> | --files <common.lua> <body.lua>");
            std::process::exit(2);
        }
    }
}
