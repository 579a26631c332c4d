//! `serve` (MCP over streamable HTTP) and `stdio` (MCP over stdin/stdout).

use anyhow::{Context, Result, bail};
use clap::Args;
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use super::args::{EdgeArgs, ToolArgs};
use super::{HttpOptions, router};
use crate::auth::Credentials;
use crate::config::{App, Config};
use crate::mcp::ReferralServer;
use crate::mcp::remote::{RemoteApi, RemoteError};

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "REFERRAL_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Host header values accepted (DNS-rebinding protection), comma-separated.
    #[arg(
        long,
        env = "REFERRAL_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1,::1"
    )]
    pub allowed_hosts: Vec<String>,
    /// Origin header values accepted, comma-separated (`:*` = any port).
    #[arg(
        long,
        env = "REFERRAL_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:*,http://127.0.0.1:*,https://localhost:*"
    )]
    pub allowed_origins: Vec<String>,
    /// Let clients without credentials connect; they see only the public tool.
    #[arg(long, env = "REFERRAL_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,
    /// Seed demo data first (once per database) and print credentials.
    #[arg(long)]
    pub demo: bool,
    /// Seconds a REST request may run before it is answered 408.
    #[arg(long, env = "REFERRAL_REQUEST_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,
    #[command(flatten)]
    pub tools: ToolArgs,
    #[command(flatten)]
    pub edge: EdgeArgs,
}

#[derive(Args, Debug, Clone)]
pub struct StdioArgs {
    /// Forward every tool call to this deployment's REST API instead of opening a
    /// database (e.g. `https://referrals.example.com`).
    #[arg(long, env = "REFERRAL_REMOTE_URL")]
    pub remote: Option<String>,
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// Serves until SIGTERM or Ctrl-C, then drains requests in flight (axum's graceful
/// shutdown) so a rolling restart loses no call.
pub(super) async fn http(app: &App, cfg: &Config, args: ServeArgs) -> Result<()> {
    let filter = args.tools.filter()?;
    let edge = args.edge.edge(&cfg.public_url)?;
    if args.demo {
        super::demo::run(app, cfg, false).await?;
    }
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let opts = HttpOptions {
        allowed_hosts: args.allowed_hosts,
        allowed_origins: args.allowed_origins,
        allow_anonymous: args.allow_anonymous,
        filter,
        request_timeout: std::time::Duration::from_secs(args.request_timeout.max(1)),
        edge,
    };
    let app_router = router(app.clone(), opts, shutdown.clone());
    eprintln!(
        "referral-mcp: MCP at http://{addr}/mcp, REST at http://{addr}/ (OpenAPI at /openapi.json; database {})",
        cfg.database_url
    );
    let stop = shutdown.clone();
    axum::serve(
        listener,
        app_router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        wait_for_signal().await;
        stop.cancel();
    })
    .await?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Credentials come from `REFERRAL_API_KEY` or `REFERRAL_TOKEN` and are checked before
/// the protocol starts, so a misconfigured desktop client fails loudly on stderr.
pub(super) async fn stdio(app: &App, args: StdioArgs) -> Result<()> {
    let filter = args.tools.filter()?;
    let creds = env_credentials()?;
    let principal = app.auth.authenticate(&creds).await.map_err(|e| match e {
        crate::core::error::Error::Unauthenticated(_) => anyhow::anyhow!(
            "the configured credential was refused: {}",
            e.public_message()
        ),
        // An outage is not the credential's fault: say so, so nobody replaces a good key.
        other => anyhow::anyhow!(
            "the configured credential could not be checked: {}",
            other.public_message()
        ),
    })?;
    tracing::info!(account = %principal.account, "stdio session authenticated");
    let server = ReferralServer::new(app.clone(), filter, Some(principal));
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

/// `stdio --remote URL`: the credential is checked against the deployment at start-up
/// (`GET /auth/whoami`, free), which also says which tools to list.
pub(super) async fn remote_stdio(url: &str, tools: &ToolArgs) -> Result<()> {
    let filter = tools.filter()?;
    let creds = env_credentials()?;
    let api = RemoteApi::new(url, creds).map_err(|e| anyhow::anyhow!("{e}"))?;
    let me = api.whoami().await.map_err(|e| match e {
        RemoteError::Problem(p) if p.status == 401 || p.status == 403 => {
            anyhow::anyhow!(
                "the configured credential was refused by {url}: {}",
                p.detail
            )
        }
        RemoteError::Problem(p) => {
            anyhow::anyhow!("{url} could not check the credential: {}", p.detail)
        }
        other => anyhow::anyhow!("{other}"),
    })?;
    let principal = me.principal()?;
    tracing::info!(account = %principal.account, remote = url, "remote stdio session authenticated");
    let server = ReferralServer::remote(api, filter, principal);
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

fn env_credentials() -> Result<Credentials> {
    Ok(
        match (
            std::env::var("REFERRAL_API_KEY")
                .ok()
                .filter(|s| !s.is_empty()),
            std::env::var("REFERRAL_TOKEN")
                .ok()
                .filter(|s| !s.is_empty()),
        ) {
            (Some(k), _) => Credentials::ApiKey(k),
            (None, Some(t)) => Credentials::Bearer(t),
            (None, None) => bail!(
                "set REFERRAL_API_KEY (from `referral-mcp keys create`) or REFERRAL_TOKEN (from `referral-mcp token mint`)"
            ),
        },
    )
}
