fn main() -> std::process::ExitCode {
    pianola::cli::main()
}
