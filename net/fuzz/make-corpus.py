#!/usr/bin/env python3
"""Write the seed corpus of the wire decoder's fuzz target (fuzz_wire.c):
well-formed conversations, each file a mode byte then the bytes a peer
sends. Run from the repository root: python3 net/fuzz/make-corpus.py"""
import os
import struct

VERSION = 1
T = dict(HELLO=1, AUTH=2, BYE=3, HEARTBEAT=4, CANCEL=5, LOOKUP=6, TELL=7,
         CALL=8, REPLY=9, PART=10, DOWN=11, SPAWN=12, MONITOR=13, CHUNK=14,
         BUF=15)
MORE, CHUNKED, LAST, REPLYF, EMPTY = 1, 2, 4, 8, 16
TO = (1 << 40) | 5           # gen 1, node 0, slot 5
FROM = (1 << 40) | 9


def frame(t, payload=b"", flags=0, a=0, b=0, tag=0, c=0):
    return struct.pack("<IBBHQQII", len(payload), VERSION, T[t], flags, a,
                       b, tag, c) + payload


def hello(name=b"peer", role=0):
    return frame("HELLO", struct.pack("<IBBHQ", 0x584F4E31, role, len(name),
                                      7000, 0x1234567890ABCDEF)
                 + bytes(range(32)) + name)


def auth():
    return frame("AUTH", bytes(32))


def spawn(type_=b"echo", uid=b"u1", arg=b"xyz"):
    return bytes([len(type_), len(uid)]) + type_ + uid + arg


seeds = {
    "handshake": (0, hello() + auth() + frame("TELL", b"hi", a=TO, b=FROM,
                                              tag=3)),
    "handshake-bye": (0, hello() + frame("BYE", b"refused", c=(-4041) & 0xFFFFFFFF)),
    "lane": (0, hello(role=2) + auth() + frame("HEARTBEAT", a=7)
                + frame("HEARTBEAT", a=7, flags=REPLYF)),
    "tells": (1, b"".join(frame("TELL", struct.pack("<Q", i), a=TO, b=FROM,
                                tag=1) for i in range(4))),
    "batch": (3, frame("TELL", b"a", MORE, a=TO, b=FROM, tag=1)
                 + frame("TELL", b"b", MORE, a=TO, b=FROM, tag=1)
                 + frame("TELL", b"c", 0, a=TO, b=FROM, tag=1)),
    "call-batch": (1, frame("CALL", b"x", MORE, a=TO, b=FROM, tag=2, c=10)
                      + frame("CALL", b"y", 0, a=TO, b=FROM, tag=2, c=11)),
    "chunked": (5, frame("TELL", struct.pack("<Q", 30) + b"0123456789",
                         CHUNKED, a=TO, b=FROM, tag=4)
                   + frame("HEARTBEAT", a=99)
                   + frame("CHUNK", b"abcdefghij")
                   + frame("CHUNK", b"ABCDEFGHIJ", LAST)),
    "replies": (1, frame("REPLY", b"ok", 0, a=10, tag=5)
                   + frame("REPLY", b"refused 3", EMPTY, a=11,
                           c=(-22) & 0xFFFFFFFF)
                   + frame("REPLY", b"", EMPTY, a=12)
                   + frame("PART", struct.pack("<I", 0), a=13, tag=6)),
    "control": (7, frame("HEARTBEAT", a=12345)
                   + frame("HEARTBEAT", a=12345, flags=REPLYF)
                   + frame("CANCEL", a=10, b=2)
                   + frame("LOOKUP", b"echo", c=20)),
    "node-ops": (1, frame("SPAWN", spawn(), c=30)
                    + frame("MONITOR", a=TO)
                    + frame("DOWN", b"destroyed", a=TO, b=0, c=1)),
    "buf": (1, frame("BUF", b"bytes of a buffer" + b"hdr", a=TO, b=FROM,
                     tag=8, c=3)
               + frame("TELL", b"after", a=TO, b=FROM, tag=1)),
    "buf-chunked": (5, frame("BUF", struct.pack("<Q", 28) + b"0123456789",
                             CHUNKED, a=TO, b=FROM, tag=8, c=4)
                       + frame("HEARTBEAT", a=7)
                       + frame("CHUNK", b"abcdefghij")
                       + frame("CHUNK", b"ABCDEFGH", LAST)),
    "garbage": (0, bytes((i * 97 + 13) & 0xFF for i in range(80))),
}

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(here, exist_ok=True)
for name, (mode, body) in seeds.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(bytes([mode]) + body)
print("wrote %d seeds to %s" % (len(seeds), here))
