//! The `pianola` command line: the plugin's engine on files (`transcribe`, `cover`, `cover
//! --render` to hear it) and the plugin window as an application (`standalone`). Kept out of the plugin library: a host loads none of it.

mod cli;
mod render;
mod standalone;

fn main() -> std::process::ExitCode {
    cli::main()
}
