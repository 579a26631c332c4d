//! Flags every command shares (database, secrets, prices, billing, logging) and the
//! tool-list flags of the two MCP servers. Each one can also come from the environment,
//! so a deployment configures the service without a command line.

use anyhow::Result;
use clap::Args;

use crate::api::edge::{Edge, TrustedProxies};
use crate::config::{Config, parse_prices};

#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Database URL: `sqlite:FILE` (created on first run) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:referral-mcp.db",
        global = true
    )]
    pub database_url: String,
    /// Public base URL of the web app, used to build share URLs.
    #[arg(
        long,
        env = "REFERRAL_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub public_url: String,
    /// HS256 secret for JWTs. Default: generated on first run and stored in the database.
    #[arg(
        long,
        env = "REFERRAL_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<String>,
    /// Required `aud` of JWTs.
    #[arg(
        long,
        env = "REFERRAL_JWT_AUDIENCE",
        default_value = "referral-mcp",
        global = true
    )]
    pub jwt_audience: String,
    /// Required `iss` of JWTs, if set.
    #[arg(long, env = "REFERRAL_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,
    /// HMAC key for IP hashes. Default: generated on first run and stored in the database.
    #[arg(
        long,
        env = "REFERRAL_IP_HASH_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub ip_hash_secret: Option<String>,
    /// Credits per operation, e.g. `list_referrals=2,get_referral=1` (default 1 each).
    #[arg(long, env = "REFERRAL_PRICES", global = true)]
    pub prices: Option<String>,
    /// Public (unauthenticated) calls allowed per IP per minute.
    #[arg(
        long,
        env = "REFERRAL_PUBLIC_RATE_LIMIT",
        default_value_t = 120,
        value_parser = clap::value_parser!(i64).range(1..=1_000_000),
        global = true
    )]
    pub public_rate_limit: i64,
    /// Send reward grants to this billing service (POST with an Idempotency-Key) instead
    /// of the local ledger.
    #[arg(long, env = "REFERRAL_BILLING_URL", global = true)]
    pub billing_url: Option<String>,
    /// Bearer token for the billing service, if it needs one.
    #[arg(
        long,
        env = "REFERRAL_BILLING_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub billing_token: Option<String>,
    /// Namespace of the idempotency keys grants are sent to billing with; unique per
    /// deployment. Default: generated on first run and stored in the database. Set it
    /// explicitly for a restored copy of a database that shares the billing service.
    #[arg(long, env = "REFERRAL_GRANT_NAMESPACE", global = true)]
    pub grant_namespace: Option<String>,
    /// Accept RS256 JWTs signed by a key from this JWKS URL (beside HS256).
    #[arg(long, env = "REFERRAL_JWKS_URL", global = true)]
    pub jwks_url: Option<String>,
    /// Seconds a verified API key is remembered: the longest a key revoked elsewhere
    /// keeps working on a running server (0: check the key table on every call).
    #[arg(
        long,
        env = "REFERRAL_CREDENTIAL_CACHE_SECS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(0..=3600),
        global = true
    )]
    pub credential_cache_secs: u64,
    /// Log as JSON lines (one object per line, with the request id) instead of text.
    #[arg(long, env = "REFERRAL_LOG_JSON", global = true)]
    pub log_json: bool,
}

impl GlobalArgs {
    pub fn config(&self) -> Result<Config> {
        Ok(Config {
            database_url: self.database_url.clone(),
            public_url: self.public_url.clone(),
            jwt_secret: self.jwt_secret.clone(),
            jwt_audience: self.jwt_audience.clone(),
            jwt_issuer: self.jwt_issuer.clone(),
            ip_hash_secret: self.ip_hash_secret.clone(),
            prices: match &self.prices {
                Some(p) => parse_prices(p).map_err(anyhow::Error::msg)?,
                None => Default::default(),
            },
            public_rate_per_minute: self.public_rate_limit,
            billing_url: self.billing_url.clone(),
            billing_token: self.billing_token.clone(),
            jwks_url: self.jwks_url.clone(),
            id_seed: None,
            grant_namespace: self.grant_namespace.clone(),
            credential_cache: std::time::Duration::from_secs(self.credential_cache_secs),
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct ToolArgs {
    /// Toolsets to offer (comma-separated): referrals (default), rewards, campaigns, ingest, or all.
    #[arg(long, env = "REFERRAL_TOOLSETS", value_delimiter = ',')]
    pub toolsets: Vec<String>,
    /// Offer only tools that change nothing (plus public click capture).
    #[arg(long, env = "REFERRAL_READ_ONLY")]
    pub read_only: bool,
    /// Offer exactly these tools (comma-separated names, from any toolset).
    #[arg(long, env = "REFERRAL_TOOLS", value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Never offer these tools (comma-separated names).
    #[arg(long, env = "REFERRAL_EXCLUDE_TOOLS", value_delimiter = ',')]
    pub exclude_tools: Vec<String>,
}

impl ToolArgs {
    pub fn filter(&self) -> Result<crate::mcp::ToolFilter> {
        crate::mcp::ToolFilter::new(
            self.read_only,
            &self.toolsets,
            &self.tools,
            &self.exclude_tools,
        )
        .map_err(anyhow::Error::msg)
    }
}

/// How `serve` sits behind the network: which peers are proxies, and the URL clients use.
/// Parsed into an [`Edge`] before the server binds, so a bad entry stops start-up.
#[derive(Args, Debug, Clone)]
pub struct EdgeArgs {
    /// Proxies (IPs or CIDR blocks, comma-separated) whose `X-Forwarded-For` /
    /// `Forwarded` headers name the client. Default: none; the TCP peer is the client.
    #[arg(long, env = "REFERRAL_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Public URL of this server (the MCP resource is `{URL}/mcp`), for the RFC 9728
    /// document and `WWW-Authenticate`. Default: `--public-url`.
    #[arg(long, env = "REFERRAL_RESOURCE_URL")]
    pub resource_url: Option<String>,
}

impl EdgeArgs {
    /// The typed edge; `public_url` is the fallback for `--resource-url`.
    pub fn edge(&self, public_url: &str) -> Result<Edge> {
        let proxies = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?;
        let base = self.resource_url.as_deref().unwrap_or(public_url);
        let flag = if self.resource_url.is_some() {
            "--resource-url"
        } else {
            "--public-url"
        };
        Edge::new(base, proxies).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    }
}
