"""Deterministic, realistic rows for the reference workload, generated column-wise with numpy.

Shapes: heavy-tailed activity per user (log-normal weights: a few power users), signups growing over the
history in weekly cohorts, churn that makes retention decay week over week, a weekday/hour-of-day rhythm,
and course funnels that narrow (enrolled > started > halfway > completed). Every timestamp lies before the
tier's anchor. Each table draws from its own seeded stream, so changing one generator does not shift the
others; Faker (seeded, pinned version) only supplies pools of human names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from faker import Faker

from harness.config import Tier
from harness.seed.binary_copy import Column, Fixed, Text, jsonb_text

# Bump when a change to the generators changes the rows: already seeded data is then seeded again.
GENERATOR_VERSION = 2

US_PER_S = 1_000_000
US_PER_HOUR = 3600 * US_PER_S
US_PER_DAY = 24 * US_PER_HOUR

PERSONAS = ["saver", "investor", "debt_payer", "student", "retiree"]
PERSONA_P = [0.30, 0.25, 0.20, 0.15, 0.10]
LOCALES = [
    ("en_US", "US"),
    ("en_GB", "GB"),
    ("de_DE", "DE"),
    ("fr_FR", "FR"),
    ("es_ES", "ES"),
    ("pt_BR", "BR"),
    ("en_IN", "IN"),
    ("ja_JP", "JP"),
]
LOCALE_P = [0.38, 0.12, 0.10, 0.08, 0.08, 0.10, 0.10, 0.04]
LEVELS = ["BEGINNER", "INTERMEDIATE", "EXPERT"]
LEVEL_P = [0.45, 0.35, 0.20]
CATEGORIES = ["budgeting", "investing", "retirement", "debt", "taxes", "credit", "insurance", "crypto"]
TOPIC_WORDS = [
    "Budgeting",
    "Index Funds",
    "Retirement",
    "Debt Payoff",
    "Taxes",
    "Credit Scores",
    "Insurance",
    "Crypto",
    "Emergency Funds",
    "Real Estate",
    "Side Income",
    "Saving",
]
TOPIC_PREFIX = ["Foundations of", "Mastering", "A Practical Guide to", "Advanced", "Everyday", "Smart"]
# Hour-of-day activity (UTC): quiet nights, a lunch bump and an evening peak.
HOUR_WEIGHTS = np.array(
    [
        1,
        0.6,
        0.4,
        0.3,
        0.3,
        0.5,
        1.2,
        2.2,
        3.0,
        3.2,
        3.0,
        3.4,
        4.2,
        4.0,
        3.2,
        3.0,
        3.2,
        3.8,
        4.6,
        5.6,
        6.0,
        5.2,
        3.6,
        2.0,
    ]
)
HOUR_P = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
EVENT_TYPES = [
    "login",
    "page_view",
    "lesson_start",
    "video_play",
    "quiz_attempt",
    "lesson_complete",
    "search",
]
EVENT_P = np.array([0.0, 0.22, 0.18, 0.30, 0.12, 0.12, 0.06])  # after a session's first event (a login)
COURSE_EVENTS = {"lesson_start", "video_play", "quiz_attempt", "lesson_complete"}
EVENT_DURATION_MS = {
    "login": 800,
    "page_view": 4000,
    "lesson_start": 1500,
    "video_play": 240_000,
    "quiz_attempt": 90_000,
    "lesson_complete": 1200,
    "search": 6000,
}
DEVICES = ["ios", "android", "web"]
APP_VERSIONS = ["3.0.4", "3.1.0", "3.2.2", "3.3.1", "3.4.0"]
VIDEO_QUALITY = ["480p", "720p", "1080p"]
SEARCH_TERMS = [
    "roth ira",
    "budget template",
    "credit score",
    "index fund",
    "emergency fund",
    "mortgage",
    "student loan",
    "401k match",
    "tax bracket",
    "compound interest",
]

TABLE_STREAMS = {
    "users": 1,
    "courses": 2,
    "lessons": 3,
    "enrollments": 4,
    "user_progress": 5,
    "behavior_logs": 6,
    "points_ledger": 7,
}


@dataclass(frozen=True)
class TableData:
    """One table's rows as COPY-ready columns, in primary-key order."""

    name: str
    columns: tuple[str, ...]
    values: tuple[Column, ...]
    rows: int


def generate(tier: Tier, seed: int) -> list[TableData]:
    """All tables of the reference workload for ``tier`` and ``seed``."""
    return list(generate_tables(tier, seed))


def generate_tables(tier: Tier, seed: int) -> Iterator[TableData]:
    """The tables one by one, as soon as each is ready (users last: it needs every user's last event),
    so a loader can COPY one table while the next is being generated."""
    return _Generator(tier, seed).tables()


class _Generator:
    def __init__(self, tier: Tier, seed: int):
        self.tier = tier
        self.seed = seed
        self.end_us = int(np.datetime64(tier.anchor.replace(tzinfo=None), "us").astype(np.int64))
        self.start_us = self.end_us - tier.history_days * US_PER_DAY

    def rng(self, table: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, TABLE_STREAMS[table]])

    def tables(self) -> Iterator[TableData]:
        self._users_cache = users = self.users()
        courses = self.courses()
        yield courses.table
        lessons, lesson_counts, lesson_durations = self.lessons(courses.rows)
        yield lessons
        enrollments = self.enrollments(courses.published)
        yield enrollments.table
        progress, completed = self.user_progress(enrollments, lesson_counts, lesson_durations)
        yield progress
        logs, quiz_passes = self.behavior_logs(enrollments, lesson_counts)
        yield logs.table
        yield self.points_ledger(completed, quiz_passes)
        yield self.users_table(users, logs.last_seen)

    # -- users -------------------------------------------------------------------------------------

    def users(self) -> _Users:
        rng = self.rng("users")
        n = self.tier.users
        growth = 2.0  # signups per day triple from the first to the last day of the history
        u = rng.random(n)
        x = (-1 + np.sqrt(1 + 2 * growth * u * (1 + growth / 2))) / growth  # inverse CDF of (1 + g x)
        history_us = self.end_us - self.start_us
        signup = self.start_us + (x * 0.97 * history_us).astype(np.int64)
        signup = _snap_to_rhythm(rng, signup, self.start_us, self.end_us)
        weight = rng.lognormal(0.0, 1.5, n)
        loyal = rng.random(n) < 0.15
        weeks = rng.geometric(0.22, n)
        active_end = np.where(loyal, self.end_us, signup + weeks * 7 * US_PER_DAY + rng.integers(0, 7, n) * US_PER_DAY)
        active_end = np.minimum(active_end, self.end_us)
        persona = rng.choice(len(PERSONAS), n, p=PERSONA_P)
        locale = rng.choice(len(LOCALES), n, p=LOCALE_P)
        fake = Faker("en_US")
        fake.seed_instance(self.seed)
        firsts = [fake.first_name() for _ in range(400)]
        lasts = [fake.last_name() for _ in range(400)]
        first_idx = rng.integers(0, len(firsts), n)
        last_idx = rng.integers(0, len(lasts), n)
        return _Users(n, signup, active_end, weight, persona, locale, firsts, lasts, first_idx, last_idx)

    def users_table(self, users: _Users, last_seen: np.ndarray) -> TableData:
        ids = np.arange(1, users.n + 1)
        names = [f"{users.firsts[f]} {users.lasts[s]}" for f, s in zip(users.first_idx, users.last_idx, strict=True)]
        emails = [
            f"{users.firsts[f].lower()}.{users.lasts[s].lower().replace(' ', '')}{i}@example.com"
            for f, s, i in zip(users.first_idx, users.last_idx, ids, strict=True)
        ]
        no_login = last_seen < 0
        last_login = np.where(no_login, 0, last_seen)
        is_active = (~no_login) & (last_seen >= self.end_us - 30 * US_PER_DAY)
        return TableData(
            "users",
            (
                "id",
                "email",
                "display_name",
                "persona",
                "locale",
                "country",
                "signup_at",
                "last_login_at",
                "is_active",
            ),
            (
                Fixed("int8", ids),
                Text(np.arange(users.n), emails),
                Text(np.arange(users.n), names),
                Text(users.persona, PERSONAS),
                Text(users.locale, [loc for loc, _ in LOCALES]),
                Text(users.locale, [country for _, country in LOCALES]),
                Fixed("timestamptz", _ts(users.signup)),
                Fixed("timestamptz", _ts(last_login), nulls=no_login),
                Fixed("bool", is_active),
            ),
            users.n,
        )

    # -- catalog: courses and lessons --------------------------------------------------------------

    def courses(self) -> _Courses:
        rng = self.rng("courses")
        m = self.tier.courses
        level = rng.choice(len(LEVELS), m, p=LEVEL_P)
        category = rng.integers(0, len(CATEGORIES), m)
        prefix = rng.integers(0, len(TOPIC_PREFIX), m)
        topic = rng.integers(0, len(TOPIC_WORDS), m)
        titles = [
            f"{TOPIC_PREFIX[p]} {TOPIC_WORDS[t]} {i + 1}" for i, (p, t) in enumerate(zip(prefix, topic, strict=True))
        ]
        slugs = [title.lower().replace(" ", "-") for title in titles]
        published = rng.random(m) < 0.92
        published[0] = True
        created = self.start_us - rng.integers(30, 400, m) * US_PER_DAY
        published_at = created + rng.integers(1, 30, m) * US_PER_DAY
        table = TableData(
            "courses",
            ("id", "slug", "title", "level", "category", "published", "published_at", "created_at"),
            (
                Fixed("int4", np.arange(1, m + 1)),
                Text(np.arange(m), slugs),
                Text(np.arange(m), titles),
                Text(level, LEVELS),
                Text(category, CATEGORIES),
                Fixed("bool", published),
                Fixed("timestamptz", _ts(published_at), nulls=~published),
                Fixed("timestamptz", _ts(created)),
            ),
            m,
        )
        return _Courses(table, m, published)

    def lessons(self, m: int) -> tuple[TableData, np.ndarray, np.ndarray]:
        rng = self.rng("lessons")
        low, high = self.tier.lessons_per_course
        counts = rng.integers(low, high + 1, m)
        total = int(counts.sum())
        course_id = np.repeat(np.arange(1, m + 1), counts)
        position = _cumsum_within(np.ones(total, dtype=np.int64), counts)
        durations = np.clip(rng.lognormal(np.log(480), 0.45, total), 60, 3600).astype(np.int64)
        titles = [f"Lesson {p} of course {c}" for c, p in zip(course_id, position, strict=True)]
        table = TableData(
            "lessons",
            ("id", "course_id", "position", "title", "duration_seconds"),
            (
                Fixed("int4", np.arange(1, total + 1)),
                Fixed("int4", course_id),
                Fixed("int4", position),
                Text(np.arange(total), titles),
                Fixed("int4", durations),
            ),
            total,
        )
        return table, counts, durations

    # -- enrollments and the funnel ----------------------------------------------------------------

    def enrollments(self, published: np.ndarray) -> _Enrollments:
        rng = self.rng("enrollments")
        users = self._users
        m = len(published)
        popularity = 1.0 / (rng.permutation(m) + 2.0) ** 0.9 * published
        popularity /= popularity.sum()
        engagement = np.sqrt(users.weight / users.weight.mean())
        extra = rng.poisson(np.maximum(self.tier.enrollments_per_user - 1, 0) * engagement)
        wanted = np.minimum(1 + extra, int(published.sum()))
        user_idx = np.repeat(np.arange(users.n), wanted)
        course_idx = rng.choice(m, len(user_idx), p=popularity)
        pairs = np.unique(user_idx * m + course_idx)  # drops duplicate picks; sorted = primary-key order
        user_idx, course_idx = pairs // m, pairs % m
        span = users.active_end[user_idx] - users.signup[user_idx]
        enrolled = users.signup[user_idx] + (rng.beta(1.0, 3.0, len(pairs)) * span).astype(np.int64)
        table = TableData(
            "enrollments",
            ("user_id", "course_id", "enrolled_at"),
            (Fixed("int8", user_idx + 1), Fixed("int4", course_idx + 1), Fixed("timestamptz", _ts(enrolled))),
            len(pairs),
        )
        return _Enrollments(table, user_idx, course_idx, enrolled)

    def user_progress(
        self, enrollments: _Enrollments, lesson_counts: np.ndarray, durations: np.ndarray
    ) -> tuple[TableData, _Completions]:
        rng = self.rng("user_progress")
        users = self._users
        e_user, e_course = enrollments.user_idx, enrollments.course_idx
        k = len(e_user)
        lessons_in_course = lesson_counts[e_course]
        engagement = np.clip(np.sqrt(users.weight[e_user] / users.weight.mean()), 0.3, 2.0)
        started = rng.random(k) < np.clip(0.65 * engagement, 0.3, 0.95)
        finishes = rng.random(k) < np.clip(0.22 * engagement, 0.05, 0.6)
        reach = np.where(finishes, 1.0, rng.beta(0.9, 1.8, k))
        n_completed = np.where(started, np.floor(reach * lessons_in_course).astype(np.int64), 0)
        n_rows = np.where(started, np.minimum(n_completed + 1, lessons_in_course), 0)
        row_enroll = np.repeat(np.arange(k), n_rows)
        position = _cumsum_within(np.ones(len(row_enroll), dtype=np.int64), n_rows) - 1  # 0-based
        first_lesson = np.cumsum(lesson_counts) - lesson_counts  # 0-based lesson index of each course
        lesson_idx = first_lesson[e_course[row_enroll]] + position
        gaps = rng.exponential(1.2 * US_PER_DAY, len(row_enroll)).astype(np.int64) + US_PER_HOUR
        started_at = enrollments.enrolled_at[row_enroll] + _cumsum_within(gaps, n_rows)
        spent = (durations[lesson_idx] * rng.lognormal(0.2, 0.5, len(row_enroll))).astype(np.int64)
        completed_at = started_at + spent * US_PER_S + rng.integers(0, 3 * US_PER_HOUR, len(row_enroll))
        limit = np.minimum(users.active_end[e_user[row_enroll]], self.end_us) - 1
        is_completed = (position < n_completed[row_enroll]) & (completed_at <= limit)
        keep = started_at <= limit
        row_user = e_user[row_enroll][keep]
        lesson_idx, started_at, completed_at = lesson_idx[keep], started_at[keep], completed_at[keep]
        is_completed, spent, row_course = is_completed[keep], spent[keep], e_course[row_enroll][keep]
        percent = np.where(is_completed, 100, rng.integers(5, 96, len(row_user)))
        spent = np.where(is_completed, spent, (spent * percent) // 100)
        order = np.lexsort((lesson_idx, row_user))
        table = TableData(
            "user_progress",
            (
                "user_id",
                "lesson_id",
                "course_id",
                "status",
                "percent",
                "started_at",
                "completed_at",
                "time_spent_seconds",
            ),
            (
                Fixed("int8", row_user[order] + 1),
                Fixed("int4", lesson_idx[order] + 1),
                Fixed("int4", row_course[order] + 1),
                Text(is_completed[order].astype(np.int64), ["in_progress", "completed"]),
                Fixed("int2", percent[order]),
                Fixed("timestamptz", _ts(started_at[order])),
                Fixed("timestamptz", _ts(completed_at[order]), nulls=~is_completed[order]),
                Fixed("int4", spent[order]),
            ),
            len(row_user),
        )
        # Course completions: every lesson of the course completed.
        done_per_enrollment = np.bincount(row_enroll[keep][is_completed], minlength=k)
        course_done = np.flatnonzero(done_per_enrollment == lessons_in_course)
        last_done = np.full(k, -1, dtype=np.int64)
        np.maximum.at(last_done, row_enroll[keep][is_completed], completed_at[is_completed])
        completions = _Completions(
            lesson_user=row_user[is_completed],
            lesson_at=completed_at[is_completed],
            course_user=e_user[course_done],
            course_at=last_done[course_done],
        )
        return table, completions

    # -- behaviour logs ----------------------------------------------------------------------------

    def behavior_logs(self, enrollments: _Enrollments, lesson_counts: np.ndarray) -> tuple[_Logs, _QuizPasses]:
        rng = self.rng("behavior_logs")
        users = self._users
        total = self.tier.behavior_logs
        span = np.maximum(users.active_end - users.signup, US_PER_HOUR)
        expected = users.weight * (span / US_PER_DAY) ** 0.8
        counts = rng.multinomial(total, expected / expected.sum())
        user = np.repeat(np.arange(users.n), counts)
        # Events come in sessions of a few events each (a per-user typical length). Session starts fade
        # after signup (Beta(1, 1.6) over the active span) and follow the weekly and daily rhythm.
        typical_length = rng.uniform(3.0, 9.0, users.n)
        sessions_per_user = np.where(counts > 0, np.maximum(1, np.rint(counts / typical_length)), 0).astype(np.int64)
        session_user = np.repeat(np.arange(users.n), sessions_per_user)
        offset = (rng.beta(1.0, 1.6, len(session_user)) * span[session_user]).astype(np.int64)
        session_end = users.end_clip(self.end_us)[session_user]
        start = _snap_to_rhythm(rng, users.signup[session_user] + offset, users.signup[session_user], session_end)
        by_start = np.lexsort((start, session_user))
        start = start[by_start]
        rank = _cumsum_within(np.ones(total, dtype=np.int64), counts) - 1  # event's rank within its user
        first_session = np.cumsum(sessions_per_user) - sessions_per_user
        session = first_session[user] + rank * sessions_per_user[user] // np.maximum(counts[user], 1)
        new_session = np.ones(total, dtype=bool)
        new_session[1:] = session[1:] != session[:-1]
        gaps = np.minimum(rng.exponential(75 * US_PER_S, total), 20 * 60 * US_PER_S).astype(np.int64)
        gaps[new_session] = 0
        events_per_session = np.bincount(session, minlength=len(start))
        ts = start[session] + _cumsum_within(gaps, events_per_session)
        ts = np.minimum(ts, users.end_clip(self.end_us)[user] - 1)
        session = session + 1
        event = rng.choice(len(EVENT_TYPES), total, p=EVENT_P / EVENT_P.sum())
        event[new_session] = 0  # sessions open with a login
        # Course events point at one of the user's enrollments (and a lesson of that course).
        first_enr = np.searchsorted(enrollments.user_idx, np.arange(users.n))
        n_enr = np.bincount(enrollments.user_idx, minlength=users.n)
        course_event = np.isin(event, [EVENT_TYPES.index(e) for e in COURSE_EVENTS])
        has_enr = n_enr[user] > 0
        event[course_event & ~has_enr] = EVENT_TYPES.index("page_view")
        course_event &= has_enr
        pick = first_enr[user] + (rng.random(total) * np.maximum(n_enr[user], 1)).astype(np.int64)
        enrolled_course = np.append(enrollments.course_idx, 0)  # a sentinel keeps `pick` in range
        course = np.where(course_event, enrolled_course[np.minimum(pick, len(enrolled_course) - 1)], 0)
        first_lesson = np.cumsum(lesson_counts) - lesson_counts
        lesson = first_lesson[course] + (rng.random(total) * lesson_counts[course]).astype(np.int64)
        base = np.array([EVENT_DURATION_MS[e] for e in EVENT_TYPES], dtype=float)
        duration = np.clip(base[event] * rng.lognormal(0, 0.7, total), 50, 3_600_000).astype(np.int64)
        payload_code, payload_table, passed = self._payloads(rng, event, user, ts)
        # Ids follow time, as in an append-only log table.
        by_time = np.argsort(ts, kind="stable")
        user, ts, session, event = user[by_time], ts[by_time], session[by_time], event[by_time]
        course, lesson, course_event = course[by_time], lesson[by_time], course_event[by_time]
        duration, payload_code, passed = duration[by_time], payload_code[by_time], passed[by_time]
        last_seen = np.full(users.n, -1, dtype=np.int64)
        np.maximum.at(last_seen, user, ts)
        table = TableData(
            "behavior_logs",
            (
                "id",
                "user_id",
                "session_id",
                "event_type",
                "course_id",
                "lesson_id",
                "occurred_at",
                "duration_ms",
                "payload",
            ),
            (
                Fixed("int8", np.arange(1, total + 1)),
                Fixed("int8", user + 1),
                Fixed("int8", session),
                Text(event, EVENT_TYPES),
                Fixed("int4", course + 1, nulls=~course_event),
                Fixed("int4", lesson + 1, nulls=~course_event),
                Fixed("timestamptz", _ts(ts)),
                Fixed("int4", duration),
                Text(payload_code, payload_table, jsonb=True),
            ),
            total,
        )
        return _Logs(table, last_seen), _QuizPasses(user[passed], ts[passed])

    def _payloads(
        self, rng: np.random.Generator, event: np.ndarray, user: np.ndarray, ts: np.ndarray
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """A small jsonb document per event: device, app version by release date, event-specific detail."""
        n = len(event)
        primary_device = self.rng("users").integers(0, len(DEVICES), self._users.n)
        device = np.where(rng.random(n) < 0.85, primary_device[user], rng.integers(0, len(DEVICES), n))
        age = (ts - self.start_us) / max(self.end_us - self.start_us, 1)
        version = np.clip((age * len(APP_VERSIONS) + rng.normal(0, 0.4, n)).astype(np.int64), 0, len(APP_VERSIONS) - 1)
        detail_tables: dict[str, list[dict[str, object]]] = {
            "quiz_attempt": [{"score": s * 10, "passed": s >= 7} for s in range(11)],
            "video_play": [{"quality": q} for q in VIDEO_QUALITY],
            "search": [{"query": t} for t in SEARCH_TERMS],
        }
        detail = np.zeros(n, dtype=np.int64)
        detail_kind = np.zeros(n, dtype=np.int64)  # 0 = none, else index into kinds + 1
        kinds = list(detail_tables)
        quiz_scores = np.clip(rng.binomial(10, 0.68, n), 0, 10)
        for k, kind in enumerate(kinds, start=1):
            mask = event == EVENT_TYPES.index(kind)
            detail_kind[mask] = k
            detail[mask] = (
                quiz_scores[mask]
                if kind == "quiz_attempt"
                else rng.integers(0, len(detail_tables[kind]), int(mask.sum()))
            )
        details: list[dict[str, object]] = [{}] + [d for kind in kinds for d in detail_tables[kind]]
        detail_offsets = np.cumsum([1] + [len(detail_tables[kind]) for kind in kinds])[:-1]
        detail_code = np.where(detail_kind == 0, 0, detail_offsets[np.maximum(detail_kind - 1, 0)] + detail)
        table = [
            jsonb_text({"device": d, "app_version": v, **x}) for d in DEVICES for v in APP_VERSIONS for x in details
        ]
        code = (device * len(APP_VERSIONS) + version) * len(details) + detail_code
        passed = (event == EVENT_TYPES.index("quiz_attempt")) & (quiz_scores >= 7)
        return code, table, passed

    # -- points ------------------------------------------------------------------------------------

    def points_ledger(self, completed: _Completions, quiz: _QuizPasses) -> TableData:
        reasons = ["lesson_complete", "course_complete", "quiz_pass"]
        user = np.concatenate([completed.lesson_user, completed.course_user, quiz.user])
        at = np.concatenate([completed.lesson_at, completed.course_at, quiz.at])
        reason = np.repeat(np.arange(3), [len(completed.lesson_user), len(completed.course_user), len(quiz.user)])
        points = np.array([10, 50, 5])[reason]
        order = np.lexsort((user, at))
        n = len(user)
        return TableData(
            "points_ledger",
            ("id", "user_id", "points", "reason", "awarded_at"),
            (
                Fixed("int8", np.arange(1, n + 1)),
                Fixed("int8", user[order] + 1),
                Fixed("int4", points[order]),
                Text(reason[order], reasons),
                Fixed("timestamptz", _ts(at[order])),
            ),
            n,
        )

    @property
    def _users(self) -> _Users:
        if not hasattr(self, "_users_cache"):
            self._users_cache = self.users()
        return self._users_cache


@dataclass(frozen=True)
class _Users:
    n: int
    signup: np.ndarray
    active_end: np.ndarray
    weight: np.ndarray
    persona: np.ndarray
    locale: np.ndarray
    firsts: list[str]
    lasts: list[str]
    first_idx: np.ndarray
    last_idx: np.ndarray

    def end_clip(self, end_us: int) -> np.ndarray:
        return np.minimum(self.active_end, end_us)


@dataclass(frozen=True)
class _Courses:
    table: TableData
    rows: int
    published: np.ndarray


@dataclass(frozen=True)
class _Enrollments:
    table: TableData
    user_idx: np.ndarray
    course_idx: np.ndarray
    enrolled_at: np.ndarray


@dataclass(frozen=True)
class _Completions:
    lesson_user: np.ndarray
    lesson_at: np.ndarray
    course_user: np.ndarray
    course_at: np.ndarray


@dataclass(frozen=True)
class _QuizPasses:
    user: np.ndarray
    at: np.ndarray


@dataclass(frozen=True)
class _Logs:
    table: TableData
    last_seen: np.ndarray


def _snap_to_rhythm(
    rng: np.random.Generator, ts: np.ndarray, low: np.ndarray | int, high: np.ndarray | int
) -> np.ndarray:
    """Keep each timestamp's week, move a share of weekend days to a weekday, re-draw the hour from HOUR_P.

    A time that lands before ``low`` (earlier the same day) moves to the next day rather than being
    clipped, so nothing piles up on the exact lower bound.
    """
    n = len(ts)
    day = ts // US_PER_DAY
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    weekend = (weekday >= 5) & (rng.random(n) < 0.35)
    day = np.where(weekend, day - weekday + rng.integers(0, 5, n), day)
    hour = rng.choice(24, n, p=HOUR_P)
    within = rng.integers(0, US_PER_HOUR, n)
    snapped = day * US_PER_DAY + hour * US_PER_HOUR + within
    snapped = np.where(snapped < low, snapped + US_PER_DAY, snapped)
    return np.clip(snapped, low, np.asarray(high) - 1)


def _cumsum_within(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Inclusive running sum of ``values``, restarted at each group (consecutive runs of ``counts``)."""
    running = np.cumsum(values)
    before_group = np.concatenate([[0], running])[np.cumsum(counts) - counts]
    return running - np.repeat(before_group, counts)


def _ts(us: np.ndarray) -> np.ndarray:
    return np.asarray(us, dtype=np.int64).astype("datetime64[us]")
