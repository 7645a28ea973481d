-- Top-N per window: a ranking function OVER (PARTITION BY window_start ...)
-- filtered to the first N, as a subquery or with QUALIFY. Each window's
-- ranking is emitted once, when the window closes. ROW_NUMBER breaks ties
-- by arrival order; RANK and DENSE_RANK give ties one rank.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

-- case: Nexmark q7, the highest bid of each 10 s window (NULL prices sort
-- last under DESC NULLS LAST)
EXPLAIN SELECT auction, bidder, price, window_start FROM (
  SELECT auction, bidder, price, window_start,
         ROW_NUMBER() OVER (PARTITION BY window_start ORDER BY price DESC NULLS LAST) AS rn
  FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
) WHERE rn <= 1;
SELECT auction, bidder, price, window_start FROM (
  SELECT auction, bidder, price, window_start,
         ROW_NUMBER() OVER (PARTITION BY window_start ORDER BY price DESC NULLS LAST) AS rn
  FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
) WHERE rn <= 1;

-- case: Nexmark q5, the auctions with the most bids per hopping window; RANK
-- keeps every auction tied for first
EXPLAIN SELECT auction, num, window_start, rk FROM (
  SELECT auction, COUNT(*) AS num, window_start,
         RANK() OVER (PARTITION BY window_start, window_end ORDER BY COUNT(*) DESC) AS rk
  FROM HOP(bids, date_time, INTERVAL '5' SECOND, INTERVAL '10' SECOND)
  GROUP BY auction, window_start, window_end
) AS hot WHERE rk <= 1;
SELECT auction, num, window_start, rk FROM (
  SELECT auction, COUNT(*) AS num, window_start,
         RANK() OVER (PARTITION BY window_start, window_end ORDER BY COUNT(*) DESC) AS rk
  FROM HOP(bids, date_time, INTERVAL '5' SECOND, INTERVAL '10' SECOND)
  GROUP BY auction, window_start, window_end
) AS hot WHERE rk <= 1;

-- case: top 2 per channel and window with QUALIFY, and DENSE_RANK
SELECT channel, window_start, price, ROW_NUMBER() OVER (PARTITION BY window_start, channel ORDER BY price DESC) AS rn
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) QUALIFY rn <= 2;
SELECT auction, price, DENSE_RANK() OVER (PARTITION BY window_start ORDER BY auction) AS dr
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) QUALIFY dr <= 2 AND price > 10;

-- case: Flink's window top-N straight over the table function, with SELECT *
SELECT * FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
) WHERE rownum <= 2;
-- case: a ranking without a window is kept up to date (changelog.sql)
SELECT * FROM (SELECT auction, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price) AS rn FROM bids) WHERE rn <= 1;
-- case: and bounded
SELECT * FROM (SELECT auction, window_start, ROW_NUMBER() OVER (PARTITION BY window_start ORDER BY price) AS rn FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)) WHERE auction > 1;
-- case: any other subquery is read like a stream (subqueries.sql)
SELECT * FROM (SELECT auction FROM bids) WHERE auction > 1;
