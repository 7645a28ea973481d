-- Malformed input lines (tests/sql/data/malformed.jsonl: bad JSON on line 3,
-- a string where a number belongs on line 5). Under 'format.on_error' = 'skip'
-- they are counted and skipped; under 'fail' (the default) the query stops
-- with the line number.
-- case: skip and count
CREATE STREAM bids (auction BIGINT, price DOUBLE, date_time TIMESTAMP)
WITH (connector = 'file', path = 'tests/sql/data/malformed.jsonl', 'format.on_error' = 'skip');
SELECT auction, price FROM bids;
-- case: fail with the line number
CREATE STREAM bids (auction BIGINT, price DOUBLE, date_time TIMESTAMP)
WITH (connector = 'file', path = 'tests/sql/data/malformed.jsonl');
SELECT auction, price FROM bids;
