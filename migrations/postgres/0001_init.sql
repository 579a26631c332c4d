-- referral-mcp schema, PostgreSQL flavour. Times are unix seconds; flags are 0/1.
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    referrer_credits BIGINT NOT NULL,
    referred_credits BIGINT NOT NULL,
    window_days BIGINT NOT NULL DEFAULT 30,
    cap_count BIGINT,
    cap_credits BIGINT,
    cap_period_days BIGINT NOT NULL DEFAULT 30,
    attribution_model TEXT NOT NULL DEFAULT 'last_click',
    created_at BIGINT NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    referral_code TEXT NOT NULL UNIQUE,
    email TEXT,
    email_normalized TEXT,
    email_domain TEXT,
    signup_ip_hash TEXT,
    clicks_total BIGINT NOT NULL DEFAULT 0,
    clicks_unique BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE clicks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    is_bot BIGINT NOT NULL,
    ip_hash TEXT NOT NULL,
    is_unique BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX clicks_dedupe ON clicks (code, ip_hash, created_at);
CREATE INDEX clicks_visitor ON clicks (ip_hash, created_at);

-- Daily click counters, written in the same transaction as each click so stats never scan clicks.
CREATE TABLE click_daily (
    day BIGINT NOT NULL,
    campaign TEXT NOT NULL,
    total BIGINT NOT NULL,
    unique_count BIGINT NOT NULL,
    bots BIGINT NOT NULL,
    PRIMARY KEY (day, campaign)
);

CREATE TABLE attributions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    referrer_account TEXT NOT NULL,
    referred_account TEXT NOT NULL UNIQUE,
    code TEXT NOT NULL,
    campaign TEXT NOT NULL,
    click_id BIGINT,
    status TEXT NOT NULL,
    review_decision TEXT,
    qualified_at BIGINT,
    qualification_event TEXT,
    qualification_amount BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX attributions_referrer ON attributions (referrer_account, id);
CREATE INDEX attributions_status ON attributions (status, id);
CREATE INDEX attributions_campaign ON attributions (campaign, id);
CREATE INDEX attributions_created ON attributions (created_at);
CREATE INDEX attributions_qualified ON attributions (qualified_at);

CREATE TABLE review_reasons (
    attribution_id BIGINT NOT NULL REFERENCES attributions (id),
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (attribution_id, reason)
);

CREATE TABLE rewards (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attribution_id BIGINT NOT NULL REFERENCES attributions (id),
    side TEXT NOT NULL,
    account TEXT NOT NULL,
    credits BIGINT NOT NULL,
    status TEXT NOT NULL,
    grant_key TEXT NOT NULL UNIQUE,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_until BIGINT,
    created_at BIGINT NOT NULL,
    granted_at BIGINT,
    UNIQUE (attribution_id, side)
);
CREATE INDEX rewards_open ON rewards (status, id);
CREATE INDEX rewards_account ON rewards (account, side, created_at);
CREATE INDEX rewards_granted ON rewards (granted_at);

CREATE TABLE audit_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attribution_id BIGINT NOT NULL REFERENCES attributions (id),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    note TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX audit_by_attribution ON audit_events (attribution_id, id);

CREATE TABLE ledger (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account TEXT NOT NULL,
    delta BIGINT NOT NULL,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    at BIGINT NOT NULL
);
CREATE INDEX ledger_account ON ledger (account, id);

-- The running balance; updated with the ledger row in one transaction. The CHECK is the
-- last line of defence against an overdraft.
CREATE TABLE balances (
    account TEXT PRIMARY KEY,
    balance BIGINT NOT NULL CHECK (balance >= 0)
);

CREATE TABLE api_keys (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    account TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE rate_limits (
    bucket TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
