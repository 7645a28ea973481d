-- Mistakes in SQL: each case gives one message naming the thing, its line
-- and column, and a hint. Nothing runs.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');
CREATE STREAM plain (a BIGINT, ts TIMESTAMP) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

-- case: unknown column, with a suggestion
SELECT auction, prize FROM bids;
-- case: unknown stream
SELECT * FROM bidz;
-- case: unknown function
SELECT lenght(channel) FROM bids;
-- case: type mismatch in a comparison
SELECT * FROM bids WHERE channel > 10;
-- case: type mismatch in arithmetic
SELECT price + channel FROM bids;
-- case: WHERE must be boolean
SELECT * FROM bids WHERE price;
-- case: aggregate in WHERE
SELECT auction FROM bids WHERE COUNT(*) > 1 GROUP BY auction;
-- case: column neither grouped nor aggregated
SELECT auction, price, COUNT(*) FROM bids GROUP BY auction;
-- case: nested aggregates
SELECT SUM(COUNT(*)) FROM bids;
-- case: SUM of a string
SELECT SUM(channel) FROM bids;
-- case: TUMBLE without window columns in GROUP BY
SELECT auction, COUNT(*) FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) GROUP BY auction;
-- case: window on a stream without a watermark
SELECT COUNT(*) FROM TUMBLE(plain, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end;
-- case: a window size that is not an interval
SELECT COUNT(*) FROM TUMBLE(bids, date_time, 10) GROUP BY window_start, window_end;
-- case: months have no fixed length
SELECT COUNT(*) FROM TUMBLE(bids, date_time, INTERVAL '1' MONTH) GROUP BY window_start, window_end;
-- case: CUMULATE is not there yet
SELECT COUNT(*) FROM CUMULATE(bids, date_time, INTERVAL '5' SECOND) GROUP BY window_start, window_end;
-- case: HOP with a missing argument
SELECT COUNT(*) FROM HOP(bids, date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end;
-- case: HOP without aggregation
SELECT auction FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND);
-- case: WINDOW SLIDING with one argument
SELECT COUNT(*) FROM bids GROUP BY auction WINDOW SLIDING(INTERVAL '10' SECOND);
-- case: _op is the changelog's column under EMIT CHANGES
SELECT auction AS _op, COUNT(*) FROM bids GROUP BY auction EMIT CHANGES;
-- case: EMIT on a query without aggregates
SELECT auction FROM bids EMIT FINAL;
-- case: a join without an equality of the two sides
SELECT * FROM bids JOIN plain ON bids.auction > plain.a;
-- case: ORDER BY on a stream
SELECT auction FROM bids ORDER BY auction;
-- case: syntax error
SELECT auction FROM bids WHERE;
-- case: duplicate output names
SELECT auction, bidder AS auction FROM bids;
-- case: unsupported column type
CREATE STREAM s (a DECIMAL(40, 2)) WITH (connector = 'file', path = 'x.jsonl');
-- case: unknown connector
CREATE STREAM s (a BIGINT) WITH (connector = 'kafkaa', topic = 't');
-- case: unknown option
CREATE STREAM s (a BIGINT) WITH (connector = 'file', pth = 'x.jsonl');
-- case: watermark on a non-timestamp column
CREATE STREAM s (a BIGINT, WATERMARK FOR a AS a - INTERVAL '1' SECOND) WITH (connector = 'file', path = 'x');
-- case: stream declared twice
CREATE STREAM bids (a BIGINT) WITH (connector = 'file', path = 'x.jsonl');
-- case: insert into a stream that cannot be written
CREATE STREAM gen WITH (connector = 'nexmark', stream = 'person', events = '10');
INSERT INTO gen SELECT * FROM bids;
-- case: insert with the wrong number of columns
CREATE STREAM out (a BIGINT, b DOUBLE) WITH (connector = 'file', path = '/tmp/eddy-errors-out.jsonl');
INSERT INTO out SELECT auction FROM bids;
-- case: reading a stream without columns
CREATE STREAM sink_only WITH (connector = 'stdout');
SELECT * FROM sink_only;
-- case: a bad timestamp text compared with a TIMESTAMP
SELECT auction FROM bids WHERE date_time > '2026-13-45';
-- case: FILTER (WHERE ...) takes a condition
SELECT COUNT(*) FILTER (WHERE price) AS c FROM bids;
-- case: an interval too long for any timestamp
SELECT auction FROM bids WHERE date_time < TIMESTAMP '2026-01-01 00:00:00' + INTERVAL '100000000' DAY;
-- case: parentheses nested too deeply, with a position
SELECT ((((((((((((((((((((((((((((((((((price)))))))))))))))))))))))))))))))))) AS p FROM bids;
-- case: an EMIT CHANGES query into a sink without the _op column
CREATE STREAM counts (w TIMESTAMP, n BIGINT) WITH (connector = 'file', path = '/tmp/eddy-errors-counts.jsonl');
INSERT INTO counts SELECT window_start, COUNT(*) AS n FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND) GROUP BY window_start, window_end EMIT CHANGES;
-- case: an unknown setting
SET 'parallelism.default' = '4';
-- case: a checkpoint interval that is not a duration
SET 'checkpoint.interval' = 'often';
-- case: SET without a value
SET 'checkpoint.interval';
