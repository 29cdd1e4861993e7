-- Reference workload: analytics of an online learning platform (personal-finance courses).
-- Primary keys only: foreign keys are added after the load (constraints.sql), secondary indexes
-- live in scenarios/strategies/*.sql.
-- The seeder loads these tables in this order; every table has a primary key (the checksum orders by it).

CREATE TABLE users (
    id              bigint PRIMARY KEY,
    email           text NOT NULL,
    display_name    text NOT NULL,
    persona         text NOT NULL,          -- saver | investor | debt_payer | student | retiree
    locale          text NOT NULL,
    country         text NOT NULL,
    signup_at       timestamptz NOT NULL,
    last_login_at   timestamptz,
    is_active       boolean NOT NULL
);

CREATE TABLE courses (
    id              integer PRIMARY KEY,
    slug            text NOT NULL,
    title           text NOT NULL,
    level           text NOT NULL CHECK (level IN ('BEGINNER', 'INTERMEDIATE', 'EXPERT')),
    category        text NOT NULL,
    published       boolean NOT NULL,
    published_at    timestamptz,
    created_at      timestamptz NOT NULL
);

CREATE TABLE lessons (
    id               integer PRIMARY KEY,
    course_id        integer NOT NULL,
    position         integer NOT NULL,
    title            text NOT NULL,
    duration_seconds integer NOT NULL
);

CREATE TABLE enrollments (
    user_id         bigint NOT NULL,
    course_id       integer NOT NULL,
    enrolled_at     timestamptz NOT NULL,
    PRIMARY KEY (user_id, course_id)
);

CREATE TABLE user_progress (
    user_id            bigint NOT NULL,
    lesson_id          integer NOT NULL,
    course_id          integer NOT NULL,
    status             text NOT NULL CHECK (status IN ('in_progress', 'completed')),
    percent            smallint NOT NULL CHECK (percent BETWEEN 0 AND 100),
    started_at         timestamptz NOT NULL,
    completed_at       timestamptz,
    time_spent_seconds integer NOT NULL,
    PRIMARY KEY (user_id, lesson_id)
);

CREATE TABLE behavior_logs (
    id              bigint PRIMARY KEY,
    user_id         bigint NOT NULL,
    session_id      bigint NOT NULL,
    event_type      text NOT NULL,          -- login | lesson_start | lesson_complete | quiz_attempt | video_play | ...
    course_id       integer,
    lesson_id       integer,
    occurred_at     timestamptz NOT NULL,
    duration_ms     integer NOT NULL,
    payload         jsonb NOT NULL
);

CREATE TABLE points_ledger (
    id              bigint PRIMARY KEY,
    user_id         bigint NOT NULL,
    points          integer NOT NULL,
    reason          text NOT NULL,          -- lesson_complete | quiz_pass | streak | course_complete
    awarded_at      timestamptz NOT NULL
);
