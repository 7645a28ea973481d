-- Malformed input lines (tests/sql/data/malformed.jsonl: bad JSON on line 3,
-- a string where a number belongs on line 5). Under 'format.on_error' = 'skip'
-- they are counted and skipped; under 'dead_letter' also written, each with
-- its line, reason and text, to 'dead_letter.path'; under 'fail' (the
-- default) the query stops with the line number.
-- case: skip and count
CREATE STREAM bids (auction BIGINT, price DOUBLE, date_time TIMESTAMP)
WITH (connector = 'file', path = 'tests/sql/data/malformed.jsonl', 'format.on_error' = 'skip');
SELECT auction, price FROM bids;
-- case: dead letters
CREATE STREAM bids (auction BIGINT, price DOUBLE, date_time TIMESTAMP)
WITH (connector = 'file', path = 'tests/sql/data/malformed.jsonl',
      'format.on_error' = 'dead_letter', 'dead_letter.path' = 'bad_bids.jsonl');
SELECT auction, price FROM bids;
-- case: dead letters need a file
CREATE STREAM bids (auction BIGINT, price DOUBLE, date_time TIMESTAMP)
WITH (connector = 'file', path = 'tests/sql/data/malformed.jsonl', 'format.on_error' = 'dead_letter');
SELECT auction, price FROM bids;
-- case: fail with the line number
CREATE STREAM bids (auction BIGINT, price DOUBLE, date_time TIMESTAMP)
WITH (connector = 'file', path = 'tests/sql/data/malformed.jsonl');
SELECT auction, price FROM bids;
