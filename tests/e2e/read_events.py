"""Reads a Server-Sent Events stream with requests, as a script or a page's EventSource would, and
prints each event as one JSON line ({"id", "event", "data"}) as soon as it has arrived. Prints
"connected" once the stream's head is in. Stops after COUNT events whose type is not "totals".

Usage: read_events.py URL COUNT [LAST_EVENT_ID]
"""
import json
import sys

import requests

url, count = sys.argv[1], int(sys.argv[2])
headers = {"Accept": "text/event-stream"}
if len(sys.argv) > 3:
    headers["Last-Event-ID"] = sys.argv[3]
with requests.get(url, headers=headers, stream=True, timeout=30) as reply:
    print(json.dumps({"status": reply.status_code,
                      "content_type": reply.headers.get("Content-Type")}), flush=True)
    if reply.status_code != 200:
        print(json.dumps({"body": reply.text}), flush=True)
        sys.exit(0)
    print("connected", flush=True)
    event = {}
    seen = 0
    # chunk_size=1: hand each line over as it arrives, not once 512 bytes are in.
    for line in reply.iter_lines(chunk_size=1, decode_unicode=True):
        if line == "":
            if "data" in event:
                print(json.dumps(event), flush=True)
                if event.get("event") != "totals":
                    seen += 1
                    if seen == count:
                        break
            event = {}
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            event[field] = value[1:] if value.startswith(" ") else value
