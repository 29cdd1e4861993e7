-- Fewer, better-targeted indexes for the reference catalog (first cut; `harness compare` refines it).
CREATE INDEX bl_user_occurred_idx    ON behavior_logs (user_id, occurred_at);
CREATE INDEX bl_occurred_brin        ON behavior_logs USING brin (occurred_at) WITH (pages_per_range = 32);
CREATE INDEX bl_course_event_idx     ON behavior_logs (course_id, event_type) WHERE course_id IS NOT NULL;
CREATE INDEX up_course_user_idx      ON user_progress (course_id, user_id) INCLUDE (status, percent);
CREATE INDEX pl_awarded_user_idx     ON points_ledger (awarded_at) INCLUDE (user_id, points);
CREATE INDEX users_signup_at_idx     ON users (signup_at);
