-- Flink's call form of the window table functions, as the Nexmark queries
-- write it: TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), size)) and
-- TABLE(HOP(TABLE s, DESCRIPTOR(ts), slide, size)). Same rows as Eddy's
-- TUMBLE(s, ts, size) (tumble_basic.sql) and HOP(s, ts, slide, size).
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

-- case: TUMBLE
SELECT auction, window_start, window_end, COUNT(*) AS bids, SUM(price) AS total
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
GROUP BY auction, window_start, window_end;
-- case: HOP, lower case, without the outer TABLE(...)
select auction, window_start, count(*) as bids
from hop(table bids, descriptor(date_time), interval '5' second, interval '10' second)
group by auction, window_start, window_end;
-- case: a table function Eddy does not have
SELECT * FROM TABLE(CUMULATE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '5' SECOND, INTERVAL '10' SECOND));
-- case: processing time (Nexmark q12): a window over PROCTIME() closes by
-- the wall clock; its rows depend on when they ran, so only the plan is here
CREATE VIEW B AS SELECT *, PROCTIME() AS p_time FROM bids;
EXPLAIN SELECT bidder, COUNT(*) AS n, window_start FROM TABLE(TUMBLE(TABLE B, DESCRIPTOR(p_time), INTERVAL '10' SECOND)) GROUP BY bidder, window_start, window_end;
-- case: PROCTIME() takes no argument
SELECT PROCTIME(date_time) FROM bids;
