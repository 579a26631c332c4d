-- Webhooks (Standard Webhooks): endpoints operators register, an outbox of events written
-- by triggers in the same transaction as the change they report, and one delivery row
-- per event and subscribed endpoint, which the dispatcher claims, sends and retries.
-- Because triggers write the events, every code path that changes a referral or a reward
-- emits them, and no change can commit without its event (nor an event without its
-- change). Events are written only when some active endpoint wants them.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    -- `whsec_` + base64 of the signing key, shown once when the endpoint is created.
    secret TEXT NOT NULL,
    -- Comma-separated event types, or `*` for all.
    events TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    disabled_at INTEGER
);

CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    -- The exact body sent: {"type", "timestamp", "data"}.
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL REFERENCES webhook_events (id),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id),
    -- pending (due at next_attempt_at), delivered, dead (out of attempts)
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until INTEGER,
    last_status INTEGER,
    last_error TEXT,
    delivered_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);

-- Fan-out: one delivery per subscribed active endpoint.
CREATE TRIGGER webhook_fan_out AFTER INSERT ON webhook_events BEGIN
    INSERT INTO webhook_deliveries (event_id, endpoint_id, next_attempt_at, created_at)
    SELECT NEW.id, e.id, NEW.created_at, NEW.created_at FROM webhook_endpoints e
    WHERE e.disabled_at IS NULL AND (e.events = '*' OR (',' || e.events || ',') LIKE ('%,' || NEW.type || ',%'));
END;

-- The events. Each INSERT below writes one event if an active endpoint wants its type.
CREATE VIEW webhook_wanted AS
    SELECT events FROM webhook_endpoints WHERE disabled_at IS NULL;

CREATE TRIGGER webhook_referral_created AFTER INSERT ON attributions BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at)
    SELECT 'msg_' || lower(hex(randomblob(12))), t.type,
           json_object('type', t.type, 'timestamp', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'data',
               json_object('referral_id', NEW.id, 'campaign', NEW.campaign, 'status', NEW.status,
                           'referrer_account', NEW.referrer_account, 'referred_account', NEW.referred_account)),
           unixepoch()
    FROM (SELECT 'referral.attributed' AS type UNION ALL
          SELECT 'referral.review_required' WHERE NEW.status = 'review_required') t
    WHERE EXISTS (SELECT 1 FROM webhook_wanted w WHERE w.events = '*' OR (',' || w.events || ',') LIKE ('%,' || t.type || ',%'));
END;

CREATE TRIGGER webhook_referral_changed AFTER UPDATE OF status, review_decision ON attributions BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at)
    SELECT 'msg_' || lower(hex(randomblob(12))), t.type,
           json_object('type', t.type, 'timestamp', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'data',
               json_object('referral_id', NEW.id, 'campaign', NEW.campaign, 'status', NEW.status,
                           'referrer_account', NEW.referrer_account, 'referred_account', NEW.referred_account,
                           'review_decision', NEW.review_decision)),
           unixepoch()
    FROM (SELECT 'referral.review_required' AS type
            WHERE NEW.status = 'review_required' AND OLD.status IS NOT 'review_required'
          UNION ALL
          SELECT 'referral.' || NEW.review_decision
            WHERE NEW.review_decision IN ('approved', 'rejected') AND OLD.review_decision IS NOT NEW.review_decision) t
    WHERE EXISTS (SELECT 1 FROM webhook_wanted w WHERE w.events = '*' OR (',' || w.events || ',') LIKE ('%,' || t.type || ',%'));
END;

CREATE TRIGGER webhook_reward_created AFTER INSERT ON rewards
WHEN NEW.status IN ('granted', 'capped', 'failed', 'voided') BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at)
    SELECT 'msg_' || lower(hex(randomblob(12))), 'reward.' || NEW.status,
           json_object('type', 'reward.' || NEW.status, 'timestamp', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'data',
               json_object('referral_id', NEW.attribution_id, 'side', NEW.side, 'account', NEW.account,
                           'credits', NEW.credits, 'status', NEW.status)),
           unixepoch()
    WHERE EXISTS (SELECT 1 FROM webhook_wanted w WHERE w.events = '*' OR (',' || w.events || ',') LIKE ('%,reward.' || NEW.status || ',%'));
END;

CREATE TRIGGER webhook_reward_changed AFTER UPDATE OF status ON rewards
WHEN NEW.status IN ('granted', 'capped', 'failed', 'voided') AND NEW.status IS NOT OLD.status BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at)
    SELECT 'msg_' || lower(hex(randomblob(12))), 'reward.' || NEW.status,
           json_object('type', 'reward.' || NEW.status, 'timestamp', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'data',
               json_object('referral_id', NEW.attribution_id, 'side', NEW.side, 'account', NEW.account,
                           'credits', NEW.credits, 'status', NEW.status)),
           unixepoch()
    WHERE EXISTS (SELECT 1 FROM webhook_wanted w WHERE w.events = '*' OR (',' || w.events || ',') LIKE ('%,reward.' || NEW.status || ',%'));
END;
