"""Reads an RSS feed with feedparser, the feed library RSS readers are built on, and prints what
it found as JSON: whether the feed was well-formed, and each entry's title, link and enclosures.

Usage: read_feed.py FEED_FILE
"""
import json
import sys

import feedparser

feed = feedparser.parse(sys.argv[1])
print(json.dumps({
    "bozo": bool(feed.bozo),
    "problem": str(feed.get("bozo_exception", "")),
    "title": feed.feed.get("title"),
    "entries": [
        {
            "title": entry.get("title"),
            "link": entry.get("link"),
            "published": entry.get("published"),
            "enclosures": [e.get("href") for e in entry.get("enclosures", [])],
        }
        for entry in feed.entries
    ],
}))
