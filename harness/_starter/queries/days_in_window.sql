/* harness
description = "Days of a 30-day window ending at the anchor (a starter query: it runs on any database)"
budget_ms = 100
[params]
start = { draw = "anchor", offset_days = -30 }
end = { draw = "anchor" }
*/
SELECT day::date AS day, extract(isodow FROM day) AS weekday
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '1 day') AS day
ORDER BY day
