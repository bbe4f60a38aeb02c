//! The `agedrop` binary: everything lives in the library; see [`agedrop::cli`].

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    agedrop::cli::main()
}
