-- What the application shipped: 23 single-purpose indexes, several overlapping.
-- behavior_logs (7)
CREATE INDEX bl_user_id_idx          ON behavior_logs (user_id);
CREATE INDEX bl_occurred_at_idx      ON behavior_logs (occurred_at);
CREATE INDEX bl_event_type_idx       ON behavior_logs (event_type);
CREATE INDEX bl_course_id_idx        ON behavior_logs (course_id);
CREATE INDEX bl_lesson_id_idx        ON behavior_logs (lesson_id);
CREATE INDEX bl_session_id_idx       ON behavior_logs (session_id);
CREATE INDEX bl_user_occurred_idx    ON behavior_logs (user_id, occurred_at);
-- user_progress (6)
CREATE INDEX up_user_id_idx          ON user_progress (user_id);
CREATE INDEX up_lesson_id_idx        ON user_progress (lesson_id);
CREATE INDEX up_course_id_idx        ON user_progress (course_id);
CREATE INDEX up_status_idx           ON user_progress (status);
CREATE INDEX up_completed_at_idx     ON user_progress (completed_at);
CREATE INDEX up_started_at_idx       ON user_progress (started_at);
-- users (6)
CREATE INDEX users_email_idx         ON users (email);
CREATE INDEX users_signup_at_idx     ON users (signup_at);
CREATE INDEX users_persona_idx       ON users (persona);
CREATE INDEX users_locale_idx        ON users (locale);
CREATE INDEX users_country_idx       ON users (country);
CREATE INDEX users_last_login_idx    ON users (last_login_at);
-- courses (4)
CREATE INDEX courses_level_idx       ON courses (level);
CREATE INDEX courses_category_idx    ON courses (category);
CREATE INDEX courses_published_idx   ON courses (published);
CREATE INDEX courses_slug_idx        ON courses (slug);
