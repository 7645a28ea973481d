-- SET 'state.ttl': state without a window (a GROUP BY's groups, a
-- ranking's partitions, a regular join's rows) kept for that long of event
-- time, as the watermark tells it. The bids of tests/sql/data/bids.jsonl
-- (watermark 4 s behind): auction 3 is bid on at 0:00:09.5 and 0:00:15,
-- then nothing until 0:00:36, when the watermark has passed 0:00:31.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');
CREATE STREAM auctions (
  id BIGINT, seller BIGINT, category BIGINT, date_time TIMESTAMP, expires TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/auctions.jsonl');
CREATE STREAM untimed (auction BIGINT, price DOUBLE)
WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

-- case: without a TTL every group is kept: auction 3 counts 4 bids
SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction;

-- case: with a TTL of 10 s, a group not updated for 10 s of watermark is
-- dropped silently (as Flink): auction 3's count of 2 stays emitted, and
-- its bids at 0:00:36 and 0:00:37 start it over (+I 1, then 2)
SET 'state.ttl' = '10s';
EXPLAIN SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction;
SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction;

-- case: a ranking without a window drops a partition the same way: the
-- latest bid of auction 3 at 0:00:15 is not withdrawn by the one at 0:00:36
SET 'state.ttl' = '10s';
EXPLAIN SELECT auction, price, date_time FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY date_time DESC) AS rn FROM bids
) WHERE rn <= 1;
SELECT auction, price, date_time FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY date_time DESC) AS rn FROM bids
) WHERE rn <= 1;

-- case: a regular join under a TTL matches rows at most the TTL apart in
-- event time, whichever stream is read first: the bid of auction 2 at
-- 0:00:35 no longer meets the auction opened at 0:00:01
SET 'state.ttl' = '10s';
SELECT B.auction, B.date_time, A.date_time AS opened FROM bids B JOIN auctions A ON B.auction = A.id;

-- case: the same join without a TTL
SELECT B.auction, B.date_time, A.date_time AS opened FROM bids B JOIN auctions A ON B.auction = A.id;

-- case: a TTL counts event time: a stream without a watermark keeps its groups
SET 'state.ttl' = '10s';
EXPLAIN SELECT auction, COUNT(*) AS n FROM untimed GROUP BY auction;
