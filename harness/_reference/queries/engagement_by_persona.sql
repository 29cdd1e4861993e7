/* harness
description = "Engagement by persona over a window: share of users active, events and sessions per active user"
budget_ms = 600
tags = ["engagement"]
weight = 1

[params]
start = { draw = "anchor", offset_days = -28 }
end   = { draw = "anchor" }

[[expect]]
indexes = ["bl_occurred_at_idx"]
strategies = ["baseline"]
min_rows = { behavior_logs = 100000 }

[[expect]]
indexes = ["bl_occurred_user_idx"]
strategies = ["tuned"]
min_rows = { behavior_logs = 100000 }
*/
WITH activity AS (
    SELECT b.user_id,
           count(*)                     AS events,
           count(DISTINCT b.session_id) AS sessions,
           sum(b.duration_ms)           AS total_ms
    FROM behavior_logs b
    WHERE b.occurred_at >= %(start)s
      AND b.occurred_at <  %(end)s
    GROUP BY b.user_id
)
SELECT u.persona,
       count(*)                                                         AS users,
       count(a.user_id)                                                 AS active_users,
       round(100.0 * count(a.user_id) / count(*), 1)                    AS active_pct,
       round(avg(a.events), 1)                                          AS events_per_active_user,
       round(avg(a.sessions), 1)                                        AS sessions_per_active_user,
       round(sum(a.total_ms) / 60000.0 / nullif(sum(a.sessions), 0), 1) AS minutes_per_session
FROM users u
LEFT JOIN activity a ON a.user_id = u.id
WHERE u.signup_at < %(end)s
GROUP BY u.persona
ORDER BY active_users DESC, u.persona;
