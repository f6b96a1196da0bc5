//! The `portcullis` binary: parse the command line, set up logging, run the command.

use clap::Parser;
use portcullis::{
    cli::{Cli, Command, run},
    config::{LogFormat, ServeConfig, config_file_env, config_path_from_args},
};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(path) = config_path_from_args(&args) {
        let applied = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))
            .and_then(|text| {
                config_file_env(&text, &Cli::config_keys(), |v| {
                    std::env::var_os(v).is_some()
                })
                .map_err(|e| format!("config file {}: {e}", path.display()))
            });
        match applied {
            // SAFETY: no other thread exists yet (the runtime is built below), so nothing can
            // read the environment concurrently.
            Ok(vars) => vars
                .into_iter()
                .for_each(|(k, v)| unsafe { std::env::set_var(k, v) }),
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let cli = Cli::parse();
    let command = cli
        .command
        .unwrap_or_else(|| Command::Serve(ServeConfig::defaults()));
    let format = match &command {
        Command::Serve(c) => c.log_format,
        _ => LogFormat::Text,
    };
    init_logging(format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,poem=warn"));
    // Colour only for a person at a terminal (and not with NO_COLOR): log files and
    // collectors get plain text.
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
