-- Changelogs through operators: a query may read rows that update earlier
-- ones (a GROUP BY without a window, a ranking kept up to date). Each row
-- carries `_op`: +I and +U add a row, -U and -D take one back. Joins of two
-- streams feed these as in Nexmark q4, q9, q18 and q19.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');
CREATE STREAM auctions (
  id BIGINT, seller BIGINT, category BIGINT, date_time TIMESTAMP, expires TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/auctions.jsonl');

-- case: deduplication (Nexmark q18): each bidder's latest bid per auction;
-- a later bid withdraws the earlier one (-D) and takes its place (+I)
EXPLAIN SELECT auction, bidder, price, date_time FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY date_time DESC) AS rn FROM bids
) WHERE rn <= 1;
SELECT auction, bidder, price, date_time FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY date_time DESC) AS rn FROM bids
) WHERE rn <= 1;

-- case: the top 2 bids per auction with their rank (Nexmark q19): a bid
-- entering at rank 1 moves the one there to rank 2 (-U then +U)
SELECT * FROM (
  SELECT auction, bidder, price, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bids
) WHERE rank_number <= 2;

-- case: RANK() gives ties one rank; QUALIFY writes the bound in place
SELECT channel, bidder, RANK() OVER (PARTITION BY channel ORDER BY bidder) AS r
FROM bids QUALIFY r <= 1;

-- case: an aggregate over an aggregate's changelog: bids per number of bids
-- per auction; an auction moving from 1 to 2 bids is taken out of the first
-- count and added to the second; a count left without auctions goes (-U
-- without +U)
SELECT n, COUNT(*) AS auctions FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction) GROUP BY n;

-- case: SUM and AVG take rows back (NULL while a group has no value)
SELECT channel, SUM(best) AS total, AVG(best) AS mean, COUNT(best) AS n FROM (
  SELECT auction, channel, MAX(price) AS best FROM bids GROUP BY auction, channel
) GROUP BY channel;

-- case: the changelog of a subquery filtered and projected stays one
SELECT auction, n * 10 AS tens FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction) WHERE n >= 2;

-- case: join, aggregate, aggregate (Nexmark q4): the average winning bid
-- per category
SELECT Q.category, AVG(Q.final) AS avg_final FROM (
  SELECT MAX(B.price) AS final, A.category FROM auctions A, bids B
  WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
  GROUP BY A.id, A.category
) Q GROUP BY Q.category;

-- case: join then a ranking kept up to date (Nexmark q9): each auction's
-- winning bid
SELECT id, category, bidder, price FROM (
  SELECT A.*, B.bidder, B.price, ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.date_time ASC) AS rownum
  FROM auctions A, bids B
  WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
) WHERE rownum <= 1;

-- case: join, aggregate, ranking: the best category by average winning bid
SELECT * FROM (
  SELECT category, avg_final, ROW_NUMBER() OVER (ORDER BY avg_final DESC) AS r FROM (
    SELECT Q.category, AVG(Q.final) AS avg_final FROM (
      SELECT MAX(B.price) AS final, A.category FROM auctions A, bids B
      WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
      GROUP BY A.id, A.category
    ) Q GROUP BY Q.category
  )
) WHERE r <= 1;

-- case: MIN over a changelog cannot take a value back
SELECT MIN(n) FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction);

-- case: an OVER window over a changelog (Nexmark q6; Flink refuses it too)
SELECT auction, AVG(n) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM (
  SELECT auction, date_time, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS n FROM bids
) WHERE n <= 1;

-- case: a window over a changelog
SELECT window_start, COUNT(*) FROM TUMBLE((SELECT auction, date_time FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY date_time DESC) AS rn FROM bids) WHERE rn <= 1
), date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end;

-- case: a join with a changelog: each count meets its auction; a count
-- that changes takes its joined row back (-U) and adds the new one (+U)
EXPLAIN SELECT * FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction) C JOIN auctions A ON C.auction = A.id;
SELECT * FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction) C JOIN auctions A ON C.auction = A.id;

-- case: two changelogs joined, with a condition on both: auctions whose
-- top bid is above 5 per bid; a pair that stops meeting it is taken back
SELECT C.auction, C.n, M.top FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction) C
JOIN (SELECT auction, MAX(price) AS top FROM bids GROUP BY auction) M
ON C.auction = M.auction WHERE M.top > C.n * 5;

-- case: a LEFT JOIN without a time bound: an auction without bids yet is
-- padded (+I), the padding taken back (-D) when its first bid comes
SELECT A.id, B.bidder, B.price FROM auctions A LEFT JOIN bids B ON A.id = B.auction;

-- case: a FULL JOIN of a changelog: a count taken back pads its auction again
SELECT A.id, C.auction, C.n FROM auctions A
FULL JOIN (SELECT auction, COUNT(*) AS n FROM bids WHERE price IS NOT NULL GROUP BY auction HAVING COUNT(*) < 3) C
ON A.id = C.auction;

-- case: join of a changelog, then an aggregate, then a top-N: the category
-- with the most bids (retractions through join, aggregate and ranking)
SELECT category, bids FROM (
  SELECT category, bids, ROW_NUMBER() OVER (ORDER BY bids DESC, category) AS r FROM (
    SELECT A.category, SUM(C.n) AS bids FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction) C
    JOIN auctions A ON C.auction = A.id GROUP BY A.category
  )
) WHERE r <= 1;

-- case: a blackhole sink (as Flink's, for benchmarks) takes a changelog
-- without declaring _op, and discards it
CREATE STREAM counts (auction BIGINT, n BIGINT) WITH (connector = 'blackhole');
EXPLAIN INSERT INTO counts SELECT auction, COUNT(*) FROM bids GROUP BY auction;
INSERT INTO counts SELECT auction, COUNT(*) FROM bids GROUP BY auction;

-- case: an upsert-kafka sink (as Flink's) writes the latest row per key:
-- a record per row added, a tombstone per key taken back (tests/kafka/upsert.rs)
CREATE STREAM latest (auction BIGINT, n BIGINT, PRIMARY KEY (auction) NOT ENFORCED)
WITH (connector = 'upsert-kafka', topic = 'latest', 'properties.bootstrap.servers' = 'localhost:9092');
EXPLAIN INSERT INTO latest SELECT auction, COUNT(*) FROM bids GROUP BY auction;

-- case: an upsert-kafka sink needs its key
CREATE STREAM latest (auction BIGINT, n BIGINT)
WITH (connector = 'upsert-kafka', topic = 'latest', 'properties.bootstrap.servers' = 'localhost:9092');
