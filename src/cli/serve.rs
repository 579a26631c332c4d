//! `serve` (MCP over streamable HTTP) and `stdio` (MCP over stdin/stdout).

use anyhow::{Context, Result, bail};
use clap::Args;
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use super::args::{EdgeArgs, ToolArgs};
use super::listen::{self, ConnLimits};
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
    /// Origins whose pages may post to `/referrals/click` (CORS), comma-separated; `*`
    /// for any. Default: the origin of `--public-url`.
    #[arg(long, env = "REFERRAL_CLICK_CORS_ORIGINS", value_delimiter = ',')]
    pub click_cors_origins: Vec<String>,
    /// Seconds a client has to send a request's line and headers; a kept-alive connection
    /// idle this long is closed too.
    #[arg(long, env = "REFERRAL_HEADER_READ_TIMEOUT", default_value_t = 10)]
    pub header_read_timeout: u64,
    /// Seconds a request body may pause before the request is cut off.
    #[arg(long, env = "REFERRAL_BODY_READ_TIMEOUT", default_value_t = 30)]
    pub body_read_timeout: u64,
    /// Largest request line plus headers, in bytes; larger ones are answered 431.
    #[arg(long, env = "REFERRAL_MAX_HEADER_BYTES", default_value_t = 32 * 1024)]
    pub max_header_bytes: usize,
    /// Connections served at once; further ones wait in the accept queue.
    #[arg(long, env = "REFERRAL_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Seconds between background recover runs, which grant rewards whose holding period
    /// ended, retry failed grants and finish refund reversals; 0 turns them off (then run
    /// `recover` from a scheduler). Safe on every instance at once.
    #[arg(long, env = "REFERRAL_RECOVER_EVERY", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub recover_every: u64,
    /// Send webhooks from this instance (every instance may: each delivery is claimed by
    /// one); `--webhooks false` leaves them to others.
    #[arg(long, env = "REFERRAL_WEBHOOKS", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhooks: bool,
    /// Seconds a webhook receiver has to answer an attempt.
    #[arg(long, env = "REFERRAL_WEBHOOK_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub webhook_timeout: u64,
    /// Log every request (one line each, with its request id and status); by default
    /// only refused and failed ones are logged.
    #[arg(long, env = "REFERRAL_LOG_REQUESTS")]
    pub log_requests: bool,
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

/// Serves until SIGTERM or Ctrl-C, then drains requests in flight so a rolling restart
/// loses no call. Connections are served by [`listen::serve`] with the limits from the
/// flags.
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
        request_timeout: secs(args.request_timeout),
        edge,
        click_cors_origins: if args.click_cors_origins.is_empty() {
            public_origin(&cfg.public_url).into_iter().collect()
        } else {
            args.click_cors_origins
        },
    };
    let limits = ConnLimits {
        header_read_timeout: secs(args.header_read_timeout),
        body_read_timeout: secs(args.body_read_timeout),
        max_header_bytes: args.max_header_bytes,
        max_connections: args.max_connections,
    };
    let app_router = router(app.clone(), opts, shutdown.clone());
    eprintln!(
        "referral-mcp: MCP at http://{addr}/mcp, REST at http://{addr}/ (OpenAPI at /openapi.json; database {})",
        cfg.database_url
    );
    if args.recover_every > 0 {
        let core = app.core.clone();
        let (every, stop) = (secs(args.recover_every), shutdown.clone());
        tokio::spawn(async move { core.recover_periodically(every, &stop).await });
    }
    if args.webhooks {
        let cfg = crate::webhooks::DispatchConfig {
            timeout: secs(args.webhook_timeout),
            // Longer than an attempt can take, so a slow one is not sent twice; short
            // enough that a killed instance's claims lapse soon.
            lease: secs(args.webhook_timeout * 2 + 5),
            ..Default::default()
        };
        let dispatcher = crate::webhooks::Dispatcher::new(app.store.clone(), cfg);
        let stop = shutdown.clone();
        tokio::spawn(async move { dispatcher.run(stop).await });
    }
    let stop = shutdown.clone();
    listen::serve(listener, app_router, limits, async move {
        wait_for_signal().await;
        stop.cancel();
    })
    .await?;
    Ok(())
}

/// Whole seconds from a flag; zero would disable nothing useful, so it means one.
fn secs(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n.max(1))
}

/// The web app that builds share links lives at the public URL, so its pages may post
/// clicks by default.
fn public_origin(public_url: &str) -> Option<String> {
    let origin = url::Url::parse(public_url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
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
