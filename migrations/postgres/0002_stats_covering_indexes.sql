-- Stats count rows over time ranges. These covering indexes answer each count from the
-- index alone, without visiting rows; the narrower indexes they replace served only those
-- counts. Rewards are counted by status and time, so status leads.
DROP INDEX attributions_created;
DROP INDEX attributions_qualified;
DROP INDEX rewards_granted;
CREATE INDEX attributions_created_cover ON attributions (created_at, campaign, status, review_decision);
CREATE INDEX attributions_qualified_cover ON attributions (qualified_at, campaign);
CREATE INDEX rewards_granted_cover ON rewards (status, granted_at, credits, attribution_id);
CREATE INDEX rewards_status_created ON rewards (status, created_at, credits, attribution_id);
