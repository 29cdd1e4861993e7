-- Fewer, better-targeted indexes for the reference catalog: 5 instead of baseline's 23, chosen with
-- `harness compare --strategies baseline,tuned --tier benchmark` (see README).
-- student_behavior, cohort_retention: one user's events in time order.
CREATE INDEX bl_user_occurred_idx    ON behavior_logs (user_id, occurred_at);
-- daily_active_users (index-only), engagement_by_persona: a time window of events and who did them.
CREATE INDEX bl_occurred_user_idx    ON behavior_logs (occurred_at) INCLUDE (user_id);
-- course_funnel, lesson_dropoff: one course's progress rows, index-only for both.
CREATE INDEX up_course_user_idx      ON user_progress (course_id, user_id) INCLUDE (lesson_id, status);
-- points_leaderboard: points awarded in a period, index-only.
CREATE INDEX pl_awarded_user_idx     ON points_ledger (awarded_at) INCLUDE (user_id, points);
-- cohort_retention, engagement_by_persona: users by signup time.
CREATE INDEX users_signup_at_idx     ON users (signup_at);
