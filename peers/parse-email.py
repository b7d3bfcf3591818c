#!/usr/bin/env python3
"""Parse emails with Python's email package (policy=default, the modern
parser). Standard input is a JSON array of base64-encoded raw messages;
standard output is a JSON array with, for each message, every header as
Python reads it (decoded and unfolded, lower-case names), the defects it
found, and the text of the text/* parts. One process parses them all:
Python's start-up is the slow part."""
import base64
import email
import json
import sys
from email import policy


def parse(raw):
    msg = email.message_from_bytes(raw, policy=policy.default)
    headers = {}
    defects = [type(d).__name__ for d in msg.defects]
    for name, value in msg.items():
        headers.setdefault(name.lower(), []).append(str(value))
        defects += [name + ": " + type(d).__name__ for d in getattr(value, "defects", ())]
    parts = {}
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            parts[part.get_content_type()] = part.get_content()
    return {"headers": headers, "defects": defects, "parts": parts}


messages = [base64.b64decode(m) for m in json.load(sys.stdin)]
json.dump([parse(m) for m in messages], sys.stdout, ensure_ascii=False)
