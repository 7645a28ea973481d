-- Filter and reshape a JSON-lines file, writing CSV.
--
--   cargo run --release -p eddy -- run examples/sql/filter_file.sql && cat google_bids.csv
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl', 'format.on_error' = 'skip');

CREATE STREAM google_bids WITH (connector = 'file', path = 'google_bids.csv', format = 'csv');

INSERT INTO google_bids
SELECT auction, price, UPPER(channel) AS channel, EXTRACT(SECOND FROM date_time) AS second
FROM bids
WHERE channel LIKE 'G%' AND price IS NOT NULL;
