-- EMIT CHANGES: after every input batch (here every row), one changelog row
-- per (window, key) the batch changed. `_op` is `+I` for a new row; `-U`
-- withdraws the row emitted before for the same window and key and `+U`
-- replaces it. Applying +I/+U as inserts and -U as deletes gives the table
-- EMIT FINAL emits (tests/emit_changes.rs checks that for each case).
-- Nothing is emitted when a window closes: its rows are already out.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');
CREATE STREAM clicks (user VARCHAR, t TIMESTAMP, WATERMARK FOR t AS t - INTERVAL '5' SECOND)
WITH (connector = 'file', path = 'tests/sql/data/clicks.jsonl');

-- case: tumbling windows; the bid at 00:00:08 arrives after the watermark
-- passed 00:00:10: [0, 10) is closed and the row is late (no change)
EXPLAIN SELECT auction, window_start, COUNT(*) AS bids, MAX(price) AS high
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end EMIT CHANGES;
SELECT auction, window_start, COUNT(*) AS bids, MAX(price) AS high
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end EMIT CHANGES;

-- case: hopping windows of 10 s every 4 s: a row updates each open window
-- that covers it (under EMIT CHANGES each window keeps its own state)
EXPLAIN SELECT window_start, window_end, COUNT(*) AS bids
FROM HOP(bids, date_time, INTERVAL '4' SECOND, INTERVAL '10' SECOND)
GROUP BY window_start, window_end EMIT CHANGES;
SELECT window_start, window_end, COUNT(*) AS bids, SUM(price) AS total
FROM HOP(bids, date_time, INTERVAL '4' SECOND, INTERVAL '10' SECOND)
GROUP BY window_start, window_end EMIT CHANGES;

-- case: sessions with a 3 s gap: the click at 3.5 s bridges u1's sessions
-- [0, 4) and [6, 9): both are withdrawn and the merged [0, 9) replaces them
SELECT user, window_start, window_end, COUNT(*) AS clicks
FROM SESSION(clicks, t, INTERVAL '3' SECOND)
GROUP BY user, window_start, window_end EMIT CHANGES;

-- case: HAVING applies to each changelog row: a group that stops passing
-- is withdrawn (-U without +U), one that starts passing appears (+U)
SELECT auction, COUNT(*) AS bids FROM bids GROUP BY auction HAVING COUNT(*) BETWEEN 2 AND 3;
