-- Allowed lateness and late rows. The watermark is the largest event time
-- seen (no delay), and a window stays open for 'allowed_lateness' after the
-- watermark passes its end. In tests/sql/data/bids.jsonl:
--  * the bid at 00:00:08 (price 15) arrives when the watermark is at
--    00:00:12: [0, 10) has ended but is within 5 s of lateness, so the bid
--    counts (late_accepted); under EMIT CHANGES it yields a corrected row;
--  * the bid at 00:00:15 moves the watermark to 00:00:15: [0, 10) closes
--    (10 + 5 <= 15), and EMIT FINAL emits it only now, with the late bid;
--  * the bid at 00:00:07 (price 50) then arrives too late: it is counted
--    (late) and, under late_policy = 'dead_letter', written with the reason
--    to the dead-letter sink (the test harness collects it in memory;
--    `eddy run` appends it to 'dead_letter.path');
--  * the bid with a NULL time is a dead letter too.
-- Without allowed lateness both late bids are dropped.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl',
        allowed_lateness = '5 s', late_policy = 'dead_letter', 'dead_letter.path' = 'late_bids.jsonl');
CREATE STREAM strict_bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

-- case: EMIT FINAL within and beyond the allowed lateness
EXPLAIN SELECT window_start, COUNT(*) AS bids, SUM(price) AS total
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end;
SELECT window_start, COUNT(*) AS bids, SUM(price) AS total
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end;

-- case: EMIT CHANGES: the bid within the lateness corrects [0, 10)
SELECT window_start, COUNT(*) AS bids, SUM(price) AS total
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end
EMIT CHANGES;

-- case: hopping and session windows honour the lateness too
SELECT window_start, window_end, COUNT(*) AS bids
FROM HOP(bids, date_time, INTERVAL '5' SECOND, INTERVAL '10' SECOND)
GROUP BY window_start, window_end;
SELECT auction, window_start, window_end, COUNT(*) AS bids
FROM SESSION(bids, date_time, INTERVAL '2' SECOND)
GROUP BY auction, window_start, window_end;

-- case: no allowed lateness: both late bids are dropped and counted
SELECT window_start, COUNT(*) AS bids, SUM(price) AS total
FROM TUMBLE(strict_bids, date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end;
SELECT window_start, COUNT(*) AS bids, SUM(price) AS total
FROM TUMBLE(strict_bids, date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end
EMIT CHANGES;

-- case: bad lateness options are reported when the stream is created
CREATE STREAM bad (a BIGINT) WITH (connector = 'file', path = 'x', allowed_lateness = 'a while');
-- case: dead_letter needs a path
CREATE STREAM bad (a BIGINT) WITH (connector = 'file', path = 'x', late_policy = 'dead_letter');
-- case: idle_timeout shows on the watermark (tests/idle_timeout.rs runs it)
CREATE STREAM quiet (k BIGINT, t TIMESTAMP, WATERMARK FOR t AS t - INTERVAL '1' SECOND)
WITH (connector = 'file', path = 'x', follow = 'true', idle_timeout = '30 s');
EXPLAIN SELECT k, COUNT(*) FROM TUMBLE(quiet, t, INTERVAL '1' MINUTE) GROUP BY k, window_start, window_end;
