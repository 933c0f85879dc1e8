"""Writes hard-cases.ndjson: items that stress the encoder and the seeder's validation.

Run from this folder: python3 make_hard_cases.py. The output is committed; this script is
how it was made, so the cases can be read and changed in one place.
"""

import base64
import json


def s(v):
    return {"S": v}


def n(v):
    return {"N": v}


def b(raw):
    return {"B": base64.b64encode(raw).decode()}


items = []

items.append({
    "id": s("unicode ☃ 😀"),
    "scripts": s("Zürich · Ελλάδα · 東京 · עברית · العربية · हिन्दी · 👩‍👩‍👧‍👦 🇺🇦"),
    "escapes": s('quote " backslash \\ tab \t newline \n cr \r nul \u0000 bell \u0007 ls \u2028 ps \u2029'),
    "emoji names": s("keys can be unicode too"),
    "名前": s("名前は大事"),
})

deep = s("bottom")
for level in range(30):
    deep = {"M": {f"level{30 - level}": deep}} if level % 2 == 0 else {"L": [deep, n(str(level))]}
items.append({"id": s("deep nesting"), "deep": deep})

items.append({
    "id": s("numbers"),
    "max38": n("99999999999999999999999999999999999999"),
    "min38": n("-99999999999999999999999999999999999999"),
    "tiny": n("0.000000000000000000000000000000000000001"),
    "fraction": n("3.25"),
    "zero": n("0"),
    "negative": n("-17"),
    "set": {"NS": ["1", "-2", "3.5", "12345678901234567890123456789012345678"]},
})

items.append({
    "id": s("empties"),
    "empty string": s(""),
    "empty binary": b(b""),
    "empty list": {"L": []},
    "empty map": {"M": {}},
    "null": {"NULL": True},
    "false": {"BOOL": False},
})

items.append({
    "id": s("sets and lists"),
    "strings": {"SS": ["a", "b", "ü", "😀"]},
    "binaries": {"BS": [base64.b64encode(bytes([i, 255 - i])).decode() for i in range(5)]},
    "mixed": {"L": [s("x"), n("1"), {"BOOL": True}, {"NULL": True}, b(b"\x00\x01"), {"M": {"k": s("v")}}]},
})

items.append({
    "id": s("reserved words and odd names"),
    "name": s("reserved"),
    "status": s("reserved"),
    "data": n("1"),
    "a.b": s("dotted name"),
    "#hash": s("placeholder-like name"),
    ":colon": s("value-like name"),
})

items.append({"id": s('odd key / with "quotes" and \\ and spaces'), "v": n("1")})

items.append({"id": s("large binary"), "blob": b(bytes((i * 7 + 3) % 256 for i in range(100_000)))})

filler = "".join(chr(ord("a") + (i * 7) % 26) for i in range(395_000))
items.append({"id": s("near 400 KB"), "text": s(filler)})

with open("hard-cases.ndjson", "w", encoding="utf-8") as out:
    for item in items:
        out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
print(f"wrote {len(items)} items")
