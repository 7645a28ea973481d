-- Hopping windows of 10 s starting every 4 s: the size is not a multiple of
-- the slide, so rows are aggregated into panes of gcd(10, 4) = 2 s and each
-- window merges its five panes when it closes. Windows start at multiples of
-- 4 s: [-4, 6), [0, 10), [4, 14), ... A row counts in every window covering
-- it that is still open: the bid at 00:00:07 arrives after the watermark
-- passed 00:00:10, so it misses [0, 10) but counts in [4, 14): it is late
-- but still accepted (late_accepted in the stats), not dropped.
-- No row covers [20, 30) or [24, 34): no output for them.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

EXPLAIN SELECT window_start, window_end, COUNT(*) AS bids
FROM HOP(bids, date_time, INTERVAL '4' SECOND, INTERVAL '10' SECOND)
GROUP BY window_start, window_end;

SELECT window_start, window_end, COUNT(*) AS bids, SUM(price) AS total, MAX(price) AS high
FROM HOP(bids, date_time, INTERVAL '4' SECOND, INTERVAL '10' SECOND)
GROUP BY window_start, window_end;

-- the shorthand: WINDOW SLIDING(size, advance) on the watermark column
SELECT auction, window_start, COUNT(*) AS bids
FROM bids
GROUP BY auction
WINDOW SLIDING(INTERVAL '10' SECOND, INTERVAL '5' SECOND);
