/* harness
description = "Time from signup to first completed lesson, by persona, for users who signed up in a window"
budget_ms = 250
tags = ["onboarding"]
weight = 1

[params]
start = { draw = "anchor", offset_days = -182 }
end   = { draw = "anchor" }
*/
WITH first_completion AS (
    SELECT up.user_id, min(up.completed_at) AS first_completed_at
    FROM user_progress up
    WHERE up.status = 'completed'
    GROUP BY up.user_id
)
SELECT u.persona,
       count(*)                                          AS signups,
       count(f.user_id)                                  AS completers,
       round(100.0 * count(f.user_id) / count(*), 1)     AS completer_pct,
       round((percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM f.first_completed_at - u.signup_at) / 86400))::numeric, 1) AS median_days,
       round((percentile_cont(0.9) WITHIN GROUP (
           ORDER BY extract(epoch FROM f.first_completed_at - u.signup_at) / 86400))::numeric, 1) AS p90_days
FROM users u
LEFT JOIN first_completion f ON f.user_id = u.id
WHERE u.signup_at >= %(start)s
  AND u.signup_at <  %(end)s
GROUP BY u.persona
ORDER BY u.persona;
