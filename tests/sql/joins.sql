-- Stream joins. Auctions 1-5 (tests/sql/data/auctions.jsonl) and the bids
-- of tests/sql/data/bids.jsonl (auctions 1, 2, 3 and NULL; one bid 4 s
-- out of order, one NULL event time).
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');
CREATE STREAM auctions (
  id BIGINT, seller BIGINT, category BIGINT, date_time TIMESTAMP, expires TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/auctions.jsonl');

-- case: a regular inner join (Nexmark q20): its state is kept forever
EXPLAIN SELECT B.auction, B.price, A.category FROM bids AS B INNER JOIN auctions AS A ON B.auction = A.id WHERE A.category = 10;
-- case: and its rows
SELECT B.auction, B.price, A.category FROM bids AS B INNER JOIN auctions AS A ON B.auction = A.id WHERE A.category = 10;
-- case: a comma join on the WHERE clause bounded by the auction's life (Nexmark q4's inner query)
SELECT A.id, A.category, MAX(B.price) AS final
FROM auctions A, bids B
WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
GROUP BY A.id, A.category EMIT FINAL;
-- case: an interval join: bids within 5 s after the auction opened
SELECT A.id, B.bidder, B.date_time FROM auctions A JOIN bids B
ON A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.date_time + INTERVAL '5' SECOND;
-- case: a LEFT interval join pads auctions no bid matched, when their interval has passed
SELECT A.id, B.bidder FROM auctions A LEFT JOIN bids B
ON A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.date_time + INTERVAL '5' SECOND;
-- case: late rows on the other side: auction 3 comes after auction 4 (at
-- 0:00:20) moved its stream's watermark to 0:00:16, so it is late and
-- dropped (counted in late, with the late bid of the bids), and its bid at
-- 0:00:09.5 finds no auction
CREATE STREAM auctions_late (
  id BIGINT, seller BIGINT, category BIGINT, date_time TIMESTAMP, expires TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/auctions_late.jsonl');
SELECT A.id, B.bidder, B.date_time FROM auctions_late A JOIN bids B
ON A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.date_time + INTERVAL '10' SECOND;
-- case: a window join (Nexmark q8's shape): per window, sellers who bid
SELECT P.seller, P.window_start, P.n AS auctions, Q.n AS bids
FROM (SELECT seller, window_start, window_end, COUNT(*) AS n FROM TUMBLE(auctions, date_time, INTERVAL '10' SECOND) GROUP BY seller, window_start, window_end) P
JOIN (SELECT bidder, window_start, window_end, COUNT(*) AS n FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) GROUP BY bidder, window_start, window_end) Q
ON P.seller - 90 = Q.bidder AND P.window_start = Q.window_start AND P.window_end = Q.window_end;
-- case: SET 'state.ttl' bounds a regular join's state by event time
SET 'state.ttl' = '30s';
EXPLAIN SELECT B.auction, A.category FROM bids AS B JOIN auctions AS A ON B.auction = A.id;
-- case: an outer join without a time bound pads a row with no match yet
-- and takes the padding back when one comes: a changelog (applied here)
SELECT * FROM bids B LEFT JOIN auctions A ON B.auction = A.id;
-- case: a join without an equality
SELECT * FROM bids B JOIN auctions A ON B.date_time > A.date_time;
-- case: a lookup join (Nexmark q13): the auctions file is read whole, then
-- each bid looks its auction up once
EXPLAIN SELECT B.auction, B.price, A.category FROM bids B
JOIN auctions FOR SYSTEM_TIME AS OF PROCTIME() AS A ON B.auction = A.id;
SELECT B.auction, B.price, A.category FROM bids B
JOIN auctions FOR SYSTEM_TIME AS OF PROCTIME() AS A ON B.auction = A.id;
-- case: a LEFT lookup join pads a bid whose auction is not in the table
SELECT B.auction, B.bidder, A.seller FROM bids B
LEFT JOIN auctions FOR SYSTEM_TIME AS OF PROCTIME() AS A ON B.auction = A.id;
-- case: the table of a lookup join must be bounded
CREATE STREAM live (id BIGINT, category BIGINT) WITH (connector = 'file', path = 'tests/sql/data/auctions.jsonl', follow = 'true');
SELECT B.auction FROM bids B JOIN live FOR SYSTEM_TIME AS OF PROCTIME() AS L ON B.auction = L.id;
