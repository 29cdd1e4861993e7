-- Foreign keys, added after the bulk load (one validating scan each instead of a trigger per row).
ALTER TABLE lessons       ADD CONSTRAINT lessons_course_fk       FOREIGN KEY (course_id) REFERENCES courses (id);
ALTER TABLE enrollments   ADD CONSTRAINT enrollments_user_fk     FOREIGN KEY (user_id)   REFERENCES users (id);
ALTER TABLE enrollments   ADD CONSTRAINT enrollments_course_fk   FOREIGN KEY (course_id) REFERENCES courses (id);
ALTER TABLE user_progress ADD CONSTRAINT user_progress_user_fk   FOREIGN KEY (user_id)   REFERENCES users (id);
ALTER TABLE user_progress ADD CONSTRAINT user_progress_lesson_fk FOREIGN KEY (lesson_id) REFERENCES lessons (id);
ALTER TABLE user_progress ADD CONSTRAINT user_progress_course_fk FOREIGN KEY (course_id) REFERENCES courses (id);
