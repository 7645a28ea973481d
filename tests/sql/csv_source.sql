-- format = 'csv' file sources: the bids of bids.jsonl as CSV with a header
-- line (columns in another order, matched by name), and a file without one
-- whose fields follow the declared columns.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.csv', format = 'csv', 'csv.header' = 'true');

-- case: the windowed counts of the CSV file, then of the same bids as JSON lines
SELECT window_start, COUNT(*) AS bids, SUM(price) AS total, COUNT(channel) AS channels
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY window_start, window_end;
CREATE STREAM bids_json (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');
SELECT window_start, COUNT(*) AS bids, SUM(price) AS total, COUNT(channel) AS channels
FROM TUMBLE(bids_json, date_time, INTERVAL '10' SECOND)
GROUP BY window_start, window_end;

-- case: quoting, and bad records skipped under format.on_error = 'skip'
-- (an auction that is not a number, a record without its last field)
CREATE STREAM raw (auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP)
WITH (connector = 'file', path = 'tests/sql/data/bids_bad.csv', format = 'csv', 'format.on_error' = 'skip');
SELECT auction, channel, date_time FROM raw;

-- case: the same bad records as dead letters: line, reason and text
CREATE STREAM raw (auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP)
WITH (connector = 'file', path = 'tests/sql/data/bids_bad.csv', format = 'csv',
      'format.on_error' = 'dead_letter', 'dead_letter.path' = 'bad_bids.jsonl');
SELECT auction, channel, date_time FROM raw;

-- case: by default the first bad record stops the query, naming its line
CREATE STREAM raw (auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP)
WITH (connector = 'file', path = 'tests/sql/data/bids_bad.csv', format = 'csv');
SELECT auction FROM raw;

-- case: a declared column the header does not name
CREATE STREAM odd (auction BIGINT, seller BIGINT)
WITH (connector = 'file', path = 'tests/sql/data/bids.csv', format = 'csv', 'csv.header' = 'true');
SELECT seller FROM odd;
