"""Protobuf payloads for Eddy's tests, written by Google's `protobuf`
package (an encoder independent of Eddy's, from PyPI), the schema compiled
by `protoc` (from `grpcio-tools`): reads a JSON request on stdin, writes
the result to stdout.

Request: {"proto": "<.proto source>", "message": "pkg.Msg",
          "records": [<record as protobuf JSON>, ...],
          "confluent_id": <int, optional>}

Result: {"descriptor_set": <FileDescriptorSet, base64>,
         "values": [<each record serialized, base64>, ...]}

Records use the protobuf JSON mapping (json_format.ParseDict): a Timestamp
as RFC 3339 text, an enum by name, a wrapper as its plain value. With
confluent_id, each value carries the Confluent wire format's prefix: a 0
byte, the id (4 bytes, big-endian), then the message indexes (the
message's path among the file's message types; [0] as one 0 byte).
"""

import base64
import json
import os
import struct
import sys
import tempfile

import grpc_tools
from grpc_tools import protoc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def zigzag_varint(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def message_indexes(descriptor):
    """Confluent's message indexes: the message's path among its file's
    message types, as a zigzag varint count and zigzag varint indexes;
    [0] is written as a single 0 byte."""
    path = []
    d = descriptor
    while d.containing_type is not None:
        path.append(list(d.containing_type.nested_types).index(d))
        d = d.containing_type
    path.append(list(d.file.message_types_by_name.values()).index(d))
    path.reverse()
    if path == [0]:
        return b"\x00"
    return zigzag_varint(len(path)) + b"".join(zigzag_varint(i) for i in path)


def main():
    req = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "schema.proto")
        with open(src, "w") as f:
            f.write(req["proto"])
        out = os.path.join(d, "schema.desc")
        include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        rc = protoc.main(["protoc", f"-I{d}", f"-I{include}", "--include_imports",
                          f"--descriptor_set_out={out}", src])
        if rc != 0:
            sys.exit(f"protoc failed ({rc})")
        with open(out, "rb") as f:
            raw = f.read()
    fds = descriptor_pb2.FileDescriptorSet.FromString(raw)
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(req["message"]))
    prefix = b""
    if "confluent_id" in req:
        prefix = b"\x00" + struct.pack(">I", req["confluent_id"]) + message_indexes(
            cls.DESCRIPTOR
        )
    values = []
    for r in req["records"]:
        m = json_format.ParseDict(r, cls())
        values.append(base64.b64encode(prefix + m.SerializeToString()).decode())
    json.dump({"descriptor_set": base64.b64encode(raw).decode(), "values": values}, sys.stdout)


if __name__ == "__main__":
    main()
