-- Subqueries in FROM and views: a query reads them like a stream. The
-- event-time column passes through when it is selected unchanged, so a
-- window over a view or a subquery closes on the stream's watermarks.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');
CREATE VIEW priced AS
  SELECT auction, price * 2 AS doubled, LOWER(channel) AS ch, date_time FROM bids WHERE price IS NOT NULL;

-- case: a subquery with an alias, filtered again outside
SELECT q.auction, q.doubled FROM (SELECT auction, price * 2 AS doubled FROM bids) AS q WHERE q.doubled > 40;
-- case: a view, windowed with Flink's call form
SELECT ch, window_start, COUNT(*) AS n, MAX(doubled) AS top
FROM TABLE(TUMBLE(TABLE priced, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
GROUP BY ch, window_start, window_end;
-- case: an aggregate over a windowed aggregate (the inner rows are final)
SELECT MAX(n) AS busiest, COUNT(*) AS windows
FROM (SELECT auction, window_end, COUNT(*) AS n FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
      GROUP BY auction, window_start, window_end) AS per_auction
EMIT FINAL;
-- case: a keyed aggregate over a keyed windowed aggregate: rows change workers twice
SELECT n, COUNT(*) AS auctions
FROM (SELECT auction, COUNT(*) AS n FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
      GROUP BY auction, window_start, window_end)
GROUP BY n
EMIT FINAL;
-- case: a GROUP BY WINDOW clause over a view
SELECT auction, COUNT(*) AS n FROM priced GROUP BY auction WINDOW TUMBLING (INTERVAL '20' SECOND);
-- case: a computed time column is not an event-time column
SELECT COUNT(*) FROM TUMBLE((SELECT date_time + INTERVAL '1' SECOND AS t FROM bids), t, INTERVAL '10' SECOND) GROUP BY window_start, window_end;
-- case: windows need the event-time column of the subquery
SELECT window_start, COUNT(*) FROM TUMBLE(priced, ch, INTERVAL '10' SECOND) GROUP BY window_start, window_end;
-- case: a subquery whose rows update is read as a changelog (changelog.sql)
SELECT * FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction) AS counts;
-- case: a view and a stream may not share a name
CREATE VIEW bids AS SELECT * FROM bids;
-- case: window results grouped by their window (Nexmark q5's MaxBids) are
-- aggregated per window, and each window's row comes when it closes
EXPLAIN SELECT window_start, window_end, MAX(n) AS most FROM (
  SELECT auction, window_start, window_end, COUNT(*) AS n
  FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) GROUP BY auction, window_start, window_end
) GROUP BY window_start, window_end;
SELECT window_start, window_end, MAX(n) AS most FROM (
  SELECT auction, window_start, window_end, COUNT(*) AS n
  FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) GROUP BY auction, window_start, window_end
) GROUP BY window_start, window_end;
