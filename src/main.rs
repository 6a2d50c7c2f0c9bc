use std::process::ExitCode;

fn main() -> ExitCode {
    textback::cli::main()
}
