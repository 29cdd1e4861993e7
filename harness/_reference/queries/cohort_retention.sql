/* harness
description = "Weekly signup cohorts x weeks since signup: share of the cohort active that week (week 0 = 100%)"
budget_ms = 1000
tags = ["retention"]
weight = 1

[params]
start = { draw = "anchor", offset_days = -84 }
end   = { draw = "anchor" }

[[expect]]
indexes = ["bl_user_occurred_idx"]
strategies = ["baseline", "tuned"]
min_rows = { behavior_logs = 100000 }
*/
-- Week 0 is the signup week: every cohort member counts as retained in it by definition.
WITH cohort AS (
    SELECT u.id AS user_id,
           date_trunc('week', u.signup_at AT TIME ZONE 'UTC') AS cohort_week
    FROM users u
    WHERE u.signup_at >= %(start)s
      AND u.signup_at <  %(end)s
),
cohort_size AS (
    SELECT c.cohort_week, count(*) AS users
    FROM cohort c
    GROUP BY c.cohort_week
),
later_weeks AS (
    SELECT c.cohort_week,
           ((date_trunc('week', b.occurred_at AT TIME ZONE 'UTC')::date - c.cohort_week::date) / 7) AS week_offset,
           count(DISTINCT c.user_id) AS active_users
    FROM cohort c
    JOIN behavior_logs b ON b.user_id = c.user_id
    WHERE b.occurred_at >= %(start)s
      AND b.occurred_at <  %(end)s
    GROUP BY 1, 2
),
weeks AS (
    SELECT s.cohort_week, 0 AS week_offset, s.users AS active_users
    FROM cohort_size s
    UNION ALL
    SELECT w.cohort_week, w.week_offset, w.active_users
    FROM later_weeks w
    WHERE w.week_offset >= 1
)
SELECT w.cohort_week::date                            AS cohort_week,
       w.week_offset,
       s.users                                        AS cohort_users,
       w.active_users,
       round(100.0 * w.active_users / s.users, 1)     AS retention_pct
FROM weeks w
JOIN cohort_size s ON s.cohort_week = w.cohort_week
ORDER BY w.cohort_week, w.week_offset;
