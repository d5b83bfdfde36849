//! The `kpath` binary: a thin shell over [`kpath::cli`].

fn main() -> std::process::ExitCode {
    kpath::cli::main()
}
