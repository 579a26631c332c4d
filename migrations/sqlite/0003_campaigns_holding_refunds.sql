-- Campaigns as data operators manage (issue 12): calendar cap periods, a velocity
-- threshold, active dates, a holding period and the refund policy per campaign, and an
-- audit trail of every change. Rewards keep what their campaign said when they were
-- created (grant_after, reverse_on_refund), so changing a campaign never changes them.
ALTER TABLE campaigns ADD COLUMN cap_period TEXT NOT NULL DEFAULT 'month';
UPDATE campaigns SET cap_period = CASE WHEN cap_period_days <= 1 THEN 'day' WHEN cap_period_days <= 7 THEN 'week' ELSE 'month' END;
ALTER TABLE campaigns DROP COLUMN cap_period_days;
ALTER TABLE campaigns ADD COLUMN velocity_threshold INTEGER NOT NULL DEFAULT 10;
ALTER TABLE campaigns ADD COLUMN starts_at INTEGER;
ALTER TABLE campaigns ADD COLUMN ends_at INTEGER;
ALTER TABLE campaigns ADD COLUMN holding_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN reverse_on_refund INTEGER NOT NULL DEFAULT 1;
ALTER TABLE campaigns ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
UPDATE campaigns SET updated_at = created_at;

-- One row per create or update: who, when, and each changed field before -> after (JSON).
CREATE TABLE campaign_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign TEXT NOT NULL REFERENCES campaigns (id),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    changes TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX campaign_changes_by_campaign ON campaign_changes (campaign, id);

-- A refund of the referred account, recorded once.
ALTER TABLE attributions ADD COLUMN refunded_at INTEGER;
ALTER TABLE attributions ADD COLUMN refund_event TEXT;

-- held: waiting for its holding period until grant_after. reversing: granted, and a
-- refund asked for the credits back (reversal_key) that billing has not yet confirmed.
-- conflict: billing refused the key as "same key, different amount"; terminal.
ALTER TABLE rewards ADD COLUMN grant_after INTEGER;
ALTER TABLE rewards ADD COLUMN reverse_on_refund INTEGER NOT NULL DEFAULT 1;
ALTER TABLE rewards ADD COLUMN void_reason TEXT;
ALTER TABLE rewards ADD COLUMN voided_at INTEGER;
ALTER TABLE rewards ADD COLUMN reversal_key TEXT;
ALTER TABLE rewards ADD COLUMN reversed_credits INTEGER;
CREATE INDEX rewards_held ON rewards (status, grant_after);
