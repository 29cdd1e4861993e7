/* harness
description = "Learning funnel of one course: enrolled -> started -> halfway -> completed, with conversion rates"
budget_ms = 100
tags = ["courses", "funnel"]
weight = 2

[params]
course_id = { draw = "sql", sql = "SELECT course_id, count(*) FROM enrollments GROUP BY course_id", weighted = true }

[[expect]]
indexes = ["up_course_id_idx"]
strategies = ["baseline"]
min_rows = { user_progress = 100000 }

[[expect]]
indexes = ["up_course_user_idx"]
strategies = ["tuned"]
min_rows = { user_progress = 100000 }
*/
-- Each stage is a subset of the previous one, so the counts never increase along the funnel.
WITH course_lessons AS (
    SELECT count(*) AS lessons
    FROM lessons l
    WHERE l.course_id = %(course_id)s
),
progress AS (
    SELECT up.user_id,
           count(*)                                         AS lessons_touched,
           count(*) FILTER (WHERE up.status = 'completed')  AS lessons_completed
    FROM user_progress up
    WHERE up.course_id = %(course_id)s
    GROUP BY up.user_id
),
stages AS (
    SELECT count(*)                                                                    AS enrolled,
           count(p.user_id)                                                            AS started,
           count(*) FILTER (WHERE p.lessons_completed > 0
                              AND 2 * p.lessons_completed >= cl.lessons)               AS halfway,
           count(*) FILTER (WHERE cl.lessons > 0 AND p.lessons_completed >= cl.lessons) AS completed
    FROM enrollments e
    CROSS JOIN course_lessons cl
    LEFT JOIN progress p ON p.user_id = e.user_id
    WHERE e.course_id = %(course_id)s
)
SELECT f.step,
       f.stage,
       f.users,
       round(100.0 * f.users / nullif(s.enrolled, 0), 1)                        AS pct_of_enrolled,
       round(100.0 * f.users / nullif(lag(f.users) OVER (ORDER BY f.step), 0), 1) AS pct_of_previous
FROM stages s
CROSS JOIN LATERAL (
    VALUES (1, 'enrolled', s.enrolled),
           (2, 'started', s.started),
           (3, 'halfway', s.halfway),
           (4, 'completed', s.completed)
) AS f (step, stage, users)
ORDER BY f.step;
