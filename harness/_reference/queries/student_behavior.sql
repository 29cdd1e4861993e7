/* harness
description = "One student's pattern: activity by weekday x hour, event mix, and the five most recent sessions"
budget_ms = 50
tags = ["students"]
weight = 3

[params]
user_id = { draw = "sql", weighted = true, sql = "SELECT user_id, count(*) FROM behavior_logs WHERE occurred_at >= %(anchor)s - interval '90 days' GROUP BY user_id" }
start   = { draw = "anchor", offset_days = -90 }
end     = { draw = "anchor" }

[[expect]]
indexes = ["bl_user_occurred_idx"]
strategies = ["baseline", "tuned"]
min_rows = { behavior_logs = 100000 }
*/
-- One result set in three sections (section, bucket, events, total_ms, first_at):
--   weekday_hour: bucket 'Mon 09' (UTC);  event_type: bucket = event type;  session: bucket = session id.
WITH events AS (
    SELECT b.session_id,
           b.event_type,
           b.duration_ms,
           b.occurred_at AT TIME ZONE 'UTC' AS occurred_utc
    FROM behavior_logs b
    WHERE b.user_id = %(user_id)s
      AND b.occurred_at >= %(start)s
      AND b.occurred_at <  %(end)s
),
recent_sessions AS (
    SELECT e.session_id, count(*) AS events, sum(e.duration_ms) AS total_ms, min(e.occurred_utc) AS first_at
    FROM events e
    GROUP BY e.session_id
    ORDER BY min(e.occurred_utc) DESC
    LIMIT 5
)
SELECT 'weekday_hour' AS section,
       to_char(e.occurred_utc, 'ID Dy HH24') AS bucket,
       count(*) AS events,
       sum(e.duration_ms) AS total_ms,
       min(e.occurred_utc) AS first_at
FROM events e
GROUP BY 2
UNION ALL
SELECT 'event_type', e.event_type, count(*), sum(e.duration_ms), min(e.occurred_utc)
FROM events e
GROUP BY 2
UNION ALL
SELECT 'session', r.session_id::text, r.events, r.total_ms, r.first_at
FROM recent_sessions r
ORDER BY 1, 2;
