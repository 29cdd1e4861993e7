/* harness
description = "Lesson drop-off in one course: learners reaching each lesson, completing it, and lost since the previous one"
budget_ms = 100
tags = ["courses", "funnel"]
weight = 2

[params]
course_id = { draw = "sql", sql = "SELECT course_id, count(*) FROM user_progress GROUP BY course_id", weighted = true }

[[expect]]
indexes = ["up_course_id_idx"]
strategies = ["baseline"]
min_rows = { user_progress = 100000 }

[[expect]]
indexes = ["up_course_user_idx"]
strategies = ["tuned"]
min_rows = { user_progress = 100000 }

[lint.allow]
order_without_limit = "one course's lessons: a few dozen rows at most, all of them wanted in order"
*/
WITH reached AS (
    SELECT up.lesson_id,
           count(*)                                        AS learners,
           count(*) FILTER (WHERE up.status = 'completed') AS completed
    FROM user_progress up
    WHERE up.course_id = %(course_id)s
    GROUP BY up.lesson_id
)
SELECT l.position,
       l.id                                                          AS lesson_id,
       l.title,
       coalesce(r.learners, 0)                                       AS learners,
       coalesce(r.completed, 0)                                      AS completed,
       round(100.0 * coalesce(r.completed, 0) / nullif(r.learners, 0), 1) AS completion_pct,
       lag(coalesce(r.learners, 0)) OVER (ORDER BY l.position)
           - coalesce(r.learners, 0)                                 AS lost_since_previous
FROM lessons l
LEFT JOIN reached r ON r.lesson_id = l.id
WHERE l.course_id = %(course_id)s
ORDER BY l.position;
