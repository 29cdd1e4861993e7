/* harness
description = "Daily active users and events per day over a window ending at the anchor date"
budget_ms = 250
tags = ["engagement"]
weight = 3

[params]
start = { draw = "anchor", offset_days = -14 }
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
-- Half-open window on the bare timestamp column: sargable on any index leading with occurred_at.
SELECT (b.occurred_at AT TIME ZONE 'UTC')::date AS day,
       count(DISTINCT b.user_id)              AS active_users,
       count(*)                               AS events
FROM behavior_logs b
WHERE b.occurred_at >= %(start)s
  AND b.occurred_at <  %(end)s
GROUP BY 1
ORDER BY 1;
