#!/usr/bin/env python3
"""A feedback uploader as the course's students write it: read each review
file, post it as JSON, expect 201. Kept unchanged on purpose (plain script)."""

import os
import sys

import requests

url, folder = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(folder)):
    if not name.endswith(".txt"):
        continue
    with open(os.path.join(folder, name)) as f:
        lines = f.read().splitlines()
    feedback = {"title": lines[0], "name": lines[1], "date": lines[2], "feedback": " ".join(lines[3:])}
    response = requests.post(url, json=feedback)
    if response.status_code != 201:
        print("failed", name, response.status_code, response.text)
        sys.exit(1)
    print(response.json()["id"])
