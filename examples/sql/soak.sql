-- Memory soak: an endless Nexmark stream at 200,000 events per second of
-- event time, counted per synthetic key (of 1,000,000) in 10 s tumbling
-- windows: about 1,840,000 bids and 650,000 distinct keys per window, and
-- with the 2 s delay two windows (up to ~1.3 M keys) are open at a time.
-- Window state is released as each window closes, so RSS stays flat.
-- Run by scripts/memory_soak.sh.
CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND)
WITH (connector = 'nexmark', stream = 'bid', rate = '200000', seed = '1');

CREATE STREAM sink (k BIGINT, window_start TIMESTAMP, n BIGINT)
WITH (connector = 'file', path = '/dev/null');

INSERT INTO sink
SELECT (auction * 7919 + bidder) % 1000000 AS k, window_start, COUNT(*) AS n
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY (auction * 7919 + bidder) % 1000000, window_start, window_end;
