-- Late rows: 5% of the bids move up to 8 s back in time, the watermark
-- trails by 2 s, and windows stay open 3 s longer (allowed lateness). Bids
-- later than that go to late_bids.jsonl with the reason; EMIT CHANGES
-- reports each window's count as it changes, corrections included.
--   cargo run --release -p eddy -- run examples/sql/late_bids.sql --stats
CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND)
WITH (connector = 'nexmark', stream = 'bid', events = '200000',
      out_of_order = '0.05', max_delay_ms = '8000',
      allowed_lateness = '3 s', late_policy = 'dead_letter', 'dead_letter.path' = 'late_bids.jsonl');

CREATE STREAM counts WITH (connector = 'file', path = 'bid_counts.jsonl');

INSERT INTO counts
SELECT auction, window_start, COUNT(*) AS bids
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end EMIT CHANGES;
