//! The `referral-mcp` binary: parses the command line and hands over to the library.
//! Logs always go to stderr (stdout carries the MCP protocol in `stdio` mode, and JSON
//! output for scripts otherwise).

use clap::Parser;
use referral_mcp::cli::{Cli, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The demo simulates a billing outage on purpose; its warnings would only be noise.
    let default_level = match cli.command {
        referral_mcp::cli::Command::Demo { .. } | referral_mcp::cli::Command::Catalog { .. } => {
            "error"
        }
        // A server logs each request (with its request id) at info.
        referral_mcp::cli::Command::Serve(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REFERRAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if cli.global.log_json {
        logs.json().with_current_span(true).init();
    } else {
        logs.init();
    }
    match run(&cli.global, cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
