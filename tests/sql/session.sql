-- Session windows per user with a 3 s gap (tests/sql/data/clicks.jsonl):
--  * u1's clicks at 0 s and 1 s form [0, 4); the click at 6 s forms [6, 9);
--  * the click at 3.5 s arrives later, within the 5 s watermark delay, and
--    bridges both: they merge into one session [0, 9) with 4 clicks
--    (their aggregates are merged, not recomputed);
--  * u2's click at 2 s is its own session [2, 5), emitted when the watermark
--    passes 5 s;
--  * u1's click at 8 s arrives when the watermark is at 15 s: its interval
--    [8, 11) is already closed, so it is late (dropped, counted).
-- Sessions are emitted in order of their end.
CREATE STREAM clicks (user VARCHAR, t TIMESTAMP, WATERMARK FOR t AS t - INTERVAL '5' SECOND)
WITH (connector = 'file', path = 'tests/sql/data/clicks.jsonl');

EXPLAIN SELECT user, window_start, window_end, COUNT(*) AS clicks
FROM SESSION(clicks, t, INTERVAL '3' SECOND)
GROUP BY user, window_start, window_end;

SELECT user, window_start, window_end, COUNT(*) AS clicks, MIN(t) AS first_click, MAX(t) AS last_click
FROM SESSION(clicks, t, INTERVAL '3' SECOND)
GROUP BY user, window_start, window_end;

-- the shorthand
SELECT user, window_start, window_end, COUNT(*) AS clicks
FROM clicks GROUP BY user WINDOW SESSION(INTERVAL '3' SECOND);

-- Allowed lateness (tests/sql/data/clicks_late.jsonl): no watermark delay, a
-- 3 s gap and 10 s of lateness. u1 clicks at 0 s and 6 s ([0, 3), [6, 9)),
-- then at 12 s, then at 3 s: the watermark is at 12 s, so the 3 s click is
-- late (its own interval [3, 6) has ended) but within the lateness; it
-- touches both sessions and bridges them into [0, 9) with 3 clicks. The click
-- at 5 s comes after the watermark reached 30 s: too late, dropped. Under
-- EMIT CHANGES the merge shows as two -U rows and one +U.
CREATE STREAM late_clicks (user VARCHAR, t TIMESTAMP, WATERMARK FOR t AS t)
WITH (connector = 'file', path = 'tests/sql/data/clicks_late.jsonl', allowed_lateness = '10 s');
SELECT user, window_start, window_end, COUNT(*) AS clicks
FROM SESSION(late_clicks, t, INTERVAL '3' SECOND)
GROUP BY user, window_start, window_end;
SELECT user, window_start, window_end, COUNT(*) AS clicks
FROM SESSION(late_clicks, t, INTERVAL '3' SECOND)
GROUP BY user, window_start, window_end EMIT CHANGES;
