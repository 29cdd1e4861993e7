/* harness
description = "Course completion rate by level (BEGINNER, INTERMEDIATE, EXPERT) for enrollments in a window"
budget_ms = 250
tags = ["courses"]
weight = 1

[params]
start = { draw = "anchor", offset_days = -182 }
end   = { draw = "anchor" }
*/
-- An enrollment is completed when the user completed every lesson of the course.
WITH lesson_totals AS (
    SELECT l.course_id, count(*) AS lessons
    FROM lessons l
    GROUP BY l.course_id
),
completed_lessons AS (
    SELECT up.user_id, up.course_id, count(*) AS lessons_completed
    FROM user_progress up
    WHERE up.status = 'completed'
    GROUP BY up.user_id, up.course_id
)
SELECT c.level,
       count(DISTINCT c.id)                                               AS courses,
       count(*)                                                           AS enrollments,
       count(*) FILTER (WHERE cl.lessons_completed >= lt.lessons)         AS completions,
       round(100.0 * count(*) FILTER (WHERE cl.lessons_completed >= lt.lessons) / count(*), 1) AS completion_pct
FROM enrollments e
JOIN courses c        ON c.id = e.course_id
JOIN lesson_totals lt ON lt.course_id = e.course_id
LEFT JOIN completed_lessons cl ON cl.user_id = e.user_id AND cl.course_id = e.course_id
WHERE e.enrolled_at >= %(start)s
  AND e.enrolled_at <  %(end)s
GROUP BY c.level
ORDER BY array_position(ARRAY['BEGINNER', 'INTERMEDIATE', 'EXPERT'], c.level);
