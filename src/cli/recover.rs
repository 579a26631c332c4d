//! `recover`: the operator's recovery run, the same operation as the
//! `recover_referral_grants` tool, with a progress bar instead of progress notifications.

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::print_json;
use crate::config::App;
use crate::core::RecoverRequest;
use crate::core::types::Limit;

#[derive(Args, Debug)]
pub struct RecoverArgs {
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

/// Ctrl-C cancels the run: grants in flight finish, and the report (on stdout) says
/// what was done, so an interrupted run is never a mystery.
pub(super) async fn run(app: &App, args: RecoverArgs) -> Result<()> {
    let limit = Limit::parse("limit", args.limit, RecoverRequest::MAX_LIMIT)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rewards {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    let report = app
        .core
        .run_recover(
            RecoverRequest { limit },
            &|p| {
                bar.set_length(p.total);
                bar.set_position(p.done);
            },
            &cancel,
        )
        .await?;
    bar.finish_and_clear();
    print_json(&report)
}
