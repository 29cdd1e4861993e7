/* harness
description = "Points leaderboard for a period: top N users, ties share a rank (may return more than N rows)"
budget_ms = 100
tags = ["gamification"]
weight = 2

[params]
start = { draw = "anchor", offset_days = -7 }
end   = { draw = "anchor" }
n     = { value = 10 }

[[expect]]
indexes = ["pl_awarded_user_idx"]
strategies = ["tuned"]
min_rows = { points_ledger = 100000 }

[lint.allow]
order_without_limit = "bounded by rank <= n; a LIMIT would cut users tied at the last rank"
*/
WITH totals AS (
    SELECT pl.user_id, sum(pl.points) AS points
    FROM points_ledger pl
    WHERE pl.awarded_at >= %(start)s
      AND pl.awarded_at <  %(end)s
    GROUP BY pl.user_id
),
ranked AS (
    SELECT t.user_id, t.points, rank() OVER (ORDER BY t.points DESC) AS rank
    FROM totals t
)
SELECT r.rank, r.user_id, u.display_name, r.points
FROM ranked r
JOIN users u ON u.id = r.user_id
WHERE r.rank <= %(n)s
ORDER BY r.rank, r.user_id;
