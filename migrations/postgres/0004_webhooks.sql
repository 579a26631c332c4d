-- Webhooks (Standard Webhooks): see the SQLite migration of the same name for the why.
-- Triggers write each event in the same transaction as the change it reports.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES webhook_events (id),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id),
    status TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    last_status BIGINT,
    last_error TEXT,
    delivered_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);

-- Writes one event of type `t` and its deliveries, if an active endpoint wants it.
CREATE FUNCTION webhook_emit(t TEXT, data JSONB) RETURNS VOID AS $$
DECLARE
    mid TEXT := 'msg_' || replace(gen_random_uuid()::text, '-', '');
    at BIGINT := floor(extract(epoch FROM clock_timestamp()))::BIGINT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.disabled_at IS NULL
                   AND (e.events = '*' OR (',' || e.events || ',') LIKE ('%,' || t || ',%'))) THEN
        RETURN;
    END IF;
    INSERT INTO webhook_events (id, type, payload, created_at)
    VALUES (mid, t, jsonb_build_object('type', t,
                'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                'data', data)::TEXT, at);
    INSERT INTO webhook_deliveries (event_id, endpoint_id, next_attempt_at, created_at)
    SELECT mid, e.id, at, at FROM webhook_endpoints e
    WHERE e.disabled_at IS NULL AND (e.events = '*' OR (',' || e.events || ',') LIKE ('%,' || t || ',%'));
END $$ LANGUAGE plpgsql;

CREATE FUNCTION webhook_referral() RETURNS trigger AS $$
DECLARE
    d JSONB := jsonb_build_object('referral_id', NEW.id, 'campaign', NEW.campaign, 'status', NEW.status,
        'referrer_account', NEW.referrer_account, 'referred_account', NEW.referred_account);
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM webhook_emit('referral.attributed', d);
        IF NEW.status = 'review_required' THEN
            PERFORM webhook_emit('referral.review_required', d);
        END IF;
    ELSE
        d := d || jsonb_build_object('review_decision', NEW.review_decision);
        IF NEW.status = 'review_required' AND OLD.status IS DISTINCT FROM 'review_required' THEN
            PERFORM webhook_emit('referral.review_required', d);
        END IF;
        IF NEW.review_decision IN ('approved', 'rejected') AND OLD.review_decision IS DISTINCT FROM NEW.review_decision THEN
            PERFORM webhook_emit('referral.' || NEW.review_decision, d);
        END IF;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER webhook_referral AFTER INSERT OR UPDATE OF status, review_decision ON attributions
    FOR EACH ROW EXECUTE FUNCTION webhook_referral();

CREATE FUNCTION webhook_reward() RETURNS trigger AS $$
BEGIN
    IF NEW.status IN ('granted', 'capped', 'failed', 'voided')
       AND (TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status) THEN
        PERFORM webhook_emit('reward.' || NEW.status, jsonb_build_object('referral_id', NEW.attribution_id,
            'side', NEW.side, 'account', NEW.account, 'credits', NEW.credits, 'status', NEW.status));
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER webhook_reward AFTER INSERT OR UPDATE OF status ON rewards
    FOR EACH ROW EXECUTE FUNCTION webhook_reward();
