-- referral-mcp schema, SQLite flavour. Times are unix seconds; flags are 0/1.
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    referrer_credits INTEGER NOT NULL,
    referred_credits INTEGER NOT NULL,
    window_days INTEGER NOT NULL DEFAULT 30,
    cap_count INTEGER,
    cap_credits INTEGER,
    cap_period_days INTEGER NOT NULL DEFAULT 30,
    attribution_model TEXT NOT NULL DEFAULT 'last_click',
    created_at INTEGER NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    referral_code TEXT NOT NULL UNIQUE,
    email TEXT,
    email_normalized TEXT,
    email_domain TEXT,
    signup_ip_hash TEXT,
    clicks_total INTEGER NOT NULL DEFAULT 0,
    clicks_unique INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE clicks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    code TEXT NOT NULL,
    referrer_account TEXT NOT NULL,
    campaign TEXT NOT NULL,
    landing_path TEXT,
    utm_source TEXT,
    utm_medium TEXT,
    utm_campaign TEXT,
    utm_term TEXT,
    utm_content TEXT,
    referrer_host TEXT,
    ua_family TEXT NOT NULL,
    is_bot INTEGER NOT NULL,
    ip_hash TEXT NOT NULL,
    is_unique INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX clicks_dedupe ON clicks (code, ip_hash, created_at);
CREATE INDEX clicks_visitor ON clicks (ip_hash, created_at);

-- Daily click counters, written in the same transaction as each click so stats never scan clicks.
CREATE TABLE click_daily (
    day INTEGER NOT NULL,
    campaign TEXT NOT NULL,
    total INTEGER NOT NULL,
    unique_count INTEGER NOT NULL,
    bots INTEGER NOT NULL,
    PRIMARY KEY (day, campaign)
);

CREATE TABLE attributions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    referrer_account TEXT NOT NULL,
    referred_account TEXT NOT NULL UNIQUE,
    code TEXT NOT NULL,
    campaign TEXT NOT NULL,
    click_id INTEGER,
    status TEXT NOT NULL,
    review_decision TEXT,
    qualified_at INTEGER,
    qualification_event TEXT,
    qualification_amount INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX attributions_referrer ON attributions (referrer_account, id);
CREATE INDEX attributions_status ON attributions (status, id);
CREATE INDEX attributions_campaign ON attributions (campaign, id);
CREATE INDEX attributions_created ON attributions (created_at);
CREATE INDEX attributions_qualified ON attributions (qualified_at);

CREATE TABLE review_reasons (
    attribution_id INTEGER NOT NULL REFERENCES attributions (id),
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (attribution_id, reason)
);

CREATE TABLE rewards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    attribution_id INTEGER NOT NULL REFERENCES attributions (id),
    side TEXT NOT NULL,
    account TEXT NOT NULL,
    credits INTEGER NOT NULL,
    status TEXT NOT NULL,
    grant_key TEXT NOT NULL UNIQUE,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_until INTEGER,
    created_at INTEGER NOT NULL,
    granted_at INTEGER,
    UNIQUE (attribution_id, side)
);
CREATE INDEX rewards_open ON rewards (status, id);
CREATE INDEX rewards_account ON rewards (account, side, created_at);
CREATE INDEX rewards_granted ON rewards (granted_at);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    attribution_id INTEGER NOT NULL REFERENCES attributions (id),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    note TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX audit_by_attribution ON audit_events (attribution_id, id);

CREATE TABLE ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    delta INTEGER NOT NULL,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    at INTEGER NOT NULL
);
CREATE INDEX ledger_account ON ledger (account, id);

-- The running balance; updated with the ledger row in one transaction. The CHECK is the
-- last line of defence against an overdraft.
CREATE TABLE balances (
    account TEXT PRIMARY KEY,
    balance INTEGER NOT NULL CHECK (balance >= 0)
);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prefix TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    account TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE rate_limits (
    bucket TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    hits INTEGER NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
