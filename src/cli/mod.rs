//! The command line. Every flag can also come from the environment.

mod catalog;
mod demo;
mod http_app;
mod serve;

pub use http_app::{HttpOptions, router};

use std::net::IpAddr;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::config::{App, Config, parse_prices};
use crate::core::access::ScopeSet;
use crate::core::text::{Email, SafeText};
use crate::core::types::{AccountId, Limit, ReferralCode, random_id};
use crate::core::{QualifyEvent, RecoverRequest, SignupEvent};

#[derive(Parser, Debug)]
#[command(
    name = "referral-mcp",
    version,
    about = "Referral program service: MCP tools and REST API over one referral core"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

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
    /// Accept RS256 JWTs signed by a key from this JWKS URL (beside HS256).
    #[arg(long, env = "REFERRAL_JWKS_URL", global = true)]
    pub jwks_url: Option<String>,
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
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Seed a realistic demo data set and print credentials to try it with.
    Demo {
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Mint JWTs.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Add credits to an account (operator top-up).
    Credits {
        #[arg(long)]
        account: String,
        #[arg(long)]
        amount: i64,
    },
    /// Retry reward grants that did not reach billing.
    Recover {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Record lifecycle events (what the product's backend sends).
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Write the generated tool reference: DIR/schemas/ and DIR/tools/.
    Catalog {
        #[arg(long, default_value = ".")]
        out: std::path::PathBuf,
    },
    /// Serve MCP at /mcp (streamable HTTP), REST, /openapi.json and health probes.
    Serve(ServeArgs),
    /// Serve MCP over stdio for a desktop client; credentials from the environment.
    Stdio(StdioArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ToolArgs {
    /// Offer only tools that change nothing (plus public click capture).
    #[arg(long, env = "REFERRAL_READ_ONLY")]
    pub read_only: bool,
    /// Offer only these tools (comma-separated names).
    #[arg(long, env = "REFERRAL_TOOLS", value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Never offer these tools (comma-separated names).
    #[arg(long, env = "REFERRAL_EXCLUDE_TOOLS", value_delimiter = ',')]
    pub exclude_tools: Vec<String>,
}

impl ToolArgs {
    pub fn filter(&self) -> Result<crate::mcp::ToolFilter> {
        crate::mcp::ToolFilter::new(self.read_only, &self.tools, &self.exclude_tools)
            .map_err(anyhow::Error::msg)
    }
}

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
    #[arg(long, env = "REFERRAL_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,
    #[command(flatten)]
    pub tools: ToolArgs,
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

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create an API key; the secret is printed once and never stored.
    Create {
        #[arg(long)]
        name: String,
        /// Account that owns the key and pays for its calls.
        #[arg(long, default_value = "ops")]
        account: String,
        /// Scopes: referrals:read, referrals:review, referrals:recover, referrals:ingest.
        #[arg(long = "scope", required = true, num_args = 1..)]
        scopes: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its prefix (or the whole key).
    Revoke { prefix: String },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Sign a JWT for an account.
    Mint {
        #[arg(long)]
        account: String,
        /// Add `role: admin` (all scopes).
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum IngestCommand {
    /// A new account signed up (optionally through a referral code or click).
    Signup {
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        ip: Option<IpAddr>,
        #[arg(long)]
        code: Option<String>,
        #[arg(long)]
        click_id: Option<String>,
    },
    /// A referred account qualified (e.g. first payment).
    Qualify {
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "first_payment")]
        event: String,
        #[arg(long)]
        amount: Option<i64>,
    },
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Runs the non-server commands.
pub async fn run(global: &GlobalArgs, command: Command) -> Result<()> {
    let cfg = global.config()?;
    // The catalog builds its own demo databases.
    if let Command::Catalog { out } = &command {
        return catalog::run(out).await;
    }
    // Remote mode has no database of its own.
    if let Command::Stdio(args) = &command
        && let Some(url) = &args.remote
    {
        return serve::remote_stdio(url, args.clone()).await;
    }
    let app = App::start(&cfg)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("opening database {}", cfg.database_url))?;
    let now = app.core.clock().now();
    match command {
        Command::Serve(args) => serve::http(&app, &cfg, args).await?,
        Command::Stdio(args) => serve::stdio(&app, args).await?,
        Command::Catalog { .. } => {}
        Command::Migrate => {
            eprintln!("database {} is up to date", cfg.database_url);
        }
        Command::Demo { json } => demo::run(&app, &cfg, json).await?,
        Command::Keys(KeysCommand::Create {
            name,
            account,
            scopes,
            json,
        }) => {
            let scopes = ScopeSet::parse(&scopes.join(" ")).map_err(anyhow::Error::msg)?;
            let account = AccountId::parse("account", &account)?;
            let key = app.auth.keys().create(&name, &account, scopes, now).await?;
            if json {
                print_json(&key)?;
            } else {
                println!("{}", key.key);
                eprintln!(
                    "created key {} ({}) for account {} with scopes [{}]; the secret above is shown only once",
                    key.prefix, key.name, key.account, key.scopes
                );
            }
        }
        Command::Keys(KeysCommand::Revoke { prefix }) => {
            if !app.auth.keys().revoke(&prefix, now).await? {
                bail!("no live key with prefix {prefix}");
            }
            eprintln!("revoked");
        }
        Command::Token(TokenCommand::Mint {
            account,
            admin,
            ttl,
            json,
        }) => {
            let account = AccountId::parse("account", &account)?;
            let token = app.auth.jwt().mint(&account, admin, ttl)?;
            if json {
                print_json(&serde_json::json!({
                    "token": token, "account": account, "admin": admin, "expires_in": ttl
                }))?;
            } else {
                println!("{token}");
            }
        }
        Command::Credits { account, amount } => {
            let account = AccountId::parse("account", &account)?;
            app.core
                .top_up(&account, amount, &random_id("topup:cli:"))
                .await?;
            eprintln!(
                "balance of {account}: {}",
                app.core.balance(&account).await?
            );
        }
        Command::Recover { limit } => {
            let limit = Limit::parse("limit", limit, RecoverRequest::MAX_LIMIT)?;
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} rewards {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let cancel = CancellationToken::new();
            let c2 = cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    c2.cancel();
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
            print_json(&report)?;
        }
        Command::Ingest(IngestCommand::Signup {
            account,
            email,
            ip,
            code,
            click_id,
        }) => {
            let out = app
                .core
                .record_signup(SignupEvent {
                    account: AccountId::parse("account", &account)?,
                    email: email.map(|e| Email::parse("email", &e)).transpose()?,
                    ip,
                    code: code.map(|c| ReferralCode::parse("code", &c)).transpose()?,
                    click_id,
                })
                .await?;
            print_json(&out)?;
        }
        Command::Ingest(IngestCommand::Qualify {
            account,
            event,
            amount,
        }) => {
            let out = app
                .core
                .record_qualification(QualifyEvent {
                    account: AccountId::parse("account", &account)?,
                    event: SafeText::parse("event", &event, 64)?,
                    amount,
                })
                .await?;
            print_json(&out)?;
        }
    }
    app.store.close().await;
    Ok(())
}
