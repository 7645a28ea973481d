-- Flink's legacy group windows (Nexmark q11): GROUP BY ..., SESSION(ts, gap)
-- (TUMBLE(ts, size), HOP(ts, slide, size)) with SESSION_START / _END, as
-- the window table functions: the same sessions as session.sql's.
CREATE STREAM clicks (user VARCHAR, t TIMESTAMP, WATERMARK FOR t AS t - INTERVAL '5' SECOND)
WITH (connector = 'file', path = 'tests/sql/data/clicks.jsonl');

-- case: SESSION
SELECT user, COUNT(*) AS clicks,
       SESSION_START(t, INTERVAL '3' SECOND) AS starttime,
       SESSION_END(t, INTERVAL '3' SECOND) AS endtime
FROM clicks
GROUP BY user, SESSION(t, INTERVAL '3' SECOND);
-- case: TUMBLE first in GROUP BY, TUMBLE_END in HAVING
SELECT user, COUNT(*) AS n, TUMBLE_START(t, INTERVAL '10' SECOND) AS w
FROM clicks GROUP BY TUMBLE(t, INTERVAL '10' SECOND), user
HAVING TUMBLE_END(t, INTERVAL '10' SECOND) > TIMESTAMP '2026-01-01 00:00:15';
-- case: HOP(ts, slide, size)
SELECT COUNT(*) AS n, HOP_END(t, INTERVAL '5' SECOND, INTERVAL '10' SECOND) AS w
FROM clicks GROUP BY HOP(t, INTERVAL '5' SECOND, INTERVAL '10' SECOND);
-- case: the window's time column must be the event-time column
SELECT COUNT(*) FROM clicks GROUP BY SESSION(user, INTERVAL '3' SECOND);
