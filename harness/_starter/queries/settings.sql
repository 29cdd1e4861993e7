/* harness
description = "One server setting a benchmark depends on (a starter query: it runs on any database)"
budget_ms = 100
[params]
name = { draw = "choice", values = ["work_mem", "shared_buffers", "random_page_cost", "effective_cache_size"] }
*/
SELECT %(name)s AS setting, current_setting(%(name)s) AS value
