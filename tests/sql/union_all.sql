-- UNION ALL: the rows of several queries, each reading its own stream.
-- Columns pair by position under the first query's names; numbers widen.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');
CREATE STREAM clicks (user VARCHAR, t TIMESTAMP, WATERMARK FOR t AS t - INTERVAL '5' SECOND)
WITH (connector = 'file', path = 'tests/sql/data/clicks.jsonl');

-- case: two streams, an INT widened to DOUBLE
SELECT channel AS who, price AS amount, date_time AS at FROM bids WHERE auction = 1
UNION ALL
SELECT user, 1, t FROM clicks;
-- case: a window over the union closes when both streams' watermarks pass
-- (each stream's one late row is left out: whether it is late for the
-- union depends on how far the other stream has been read, as in Flink)
SELECT who, window_start, COUNT(*) AS n
FROM TUMBLE((SELECT channel AS who, date_time AS at FROM bids WHERE price <> 50
             UNION ALL SELECT user, t FROM clicks WHERE t <> TIMESTAMP '2026-01-01 00:00:08'),
            at, INTERVAL '10' SECOND)
GROUP BY who, window_start, window_end;
-- case: three sides, one stream twice, then a keyed aggregate
SELECT src, COUNT(*) AS n FROM (
  SELECT 'cheap' AS src, auction FROM bids WHERE price < 20
  UNION ALL SELECT 'dear', auction FROM bids WHERE price >= 20
  UNION ALL SELECT 'click', 0 FROM clicks
) GROUP BY src EMIT FINAL;
-- case: UNION without ALL
SELECT auction FROM bids UNION SELECT 1 FROM clicks;
-- case: sides of different widths
SELECT auction, price FROM bids UNION ALL SELECT user FROM clicks;
-- case: columns without a common type
SELECT auction FROM bids UNION ALL SELECT user FROM clicks;
