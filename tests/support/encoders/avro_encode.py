"""Avro payloads for Eddy's tests, written by fastavro (an encoder
independent of Eddy's, from PyPI): reads a JSON request on stdin and writes
the result to stdout.

Request: {"schema": <Avro schema>, "records": [<record>, ...],
          "mode": "datum" | "confluent" | "ocf", "schema_id": <int>,
          "codec": "null" | "deflate"}

* datum: a JSON list with each record's bare Avro body, base64-encoded;
* confluent: the same with the Confluent wire format's prefix (a 0 byte,
  then schema_id as 4 big-endian bytes);
* ocf: an object container file of every record, base64-encoded;
* read_ocf (with "file", a container file base64-encoded): its writer
  schema and records, read by fastavro (decimals as text, timestamps as
  epoch milliseconds).

Values of `decimal` fields are given as strings (read with Decimal, so
exactly); a `timestamp-millis` value may be RFC 3339 text; everything else
as fastavro takes it (timestamps as epoch milliseconds or microseconds, per
their logical type).
"""

import base64
import datetime
import decimal
import io
import json
import struct
import sys

import fastavro


def logical_fields(schema, logical):
    names = set()
    for f in schema.get("fields", []):
        types = f["type"] if isinstance(f["type"], list) else [f["type"]]
        for t in types:
            if isinstance(t, dict) and t.get("logicalType") == logical:
                names.add(f["name"])
    return names


def epoch_ms(text):
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(t.timestamp() * 1000)


def plain(v):
    """A value fastavro read, as JSON: decimals as text, timestamps as
    epoch milliseconds."""
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, datetime.datetime):
        return round(v.timestamp() * 1000)
    return v


def main():
    req = json.load(sys.stdin)
    if req.get("mode") == "read_ocf":
        f = io.BytesIO(base64.b64decode(req["file"]))
        r = fastavro.reader(f)
        out = {"schema": r.writer_schema, "records": [
            {k: plain(v) for k, v in rec.items()} for rec in r]}
        json.dump(out, sys.stdout)
        return
    schema = req["schema"]
    parsed = fastavro.parse_schema(schema)
    decimals = logical_fields(schema, "decimal")
    millis = logical_fields(schema, "timestamp-millis")
    records = []
    for r in req["records"]:
        r = dict(r)
        for k in decimals:
            if r.get(k) is not None:
                r[k] = decimal.Decimal(r[k])
        for k in millis:
            if isinstance(r.get(k), str):
                r[k] = epoch_ms(r[k])
        records.append(r)
    mode = req.get("mode", "datum")
    if mode == "ocf":
        out = io.BytesIO()
        fastavro.writer(out, parsed, records, codec=req.get("codec", "null"))
        json.dump(base64.b64encode(out.getvalue()).decode(), sys.stdout)
        return
    prefix = b""
    if mode == "confluent":
        prefix = b"\x00" + struct.pack(">I", req["schema_id"])
    values = []
    for r in records:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, r)
        values.append(base64.b64encode(prefix + out.getvalue()).decode())
    json.dump(values, sys.stdout)


if __name__ == "__main__":
    main()
