#!/usr/bin/env python3
"""A feedback uploader as many students write it: readlines() and the lines
posted as they come, newline and all. Kept plain on purpose."""

import os
import sys

import requests

url, folder = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(folder)):
    if not name.endswith(".txt"):
        continue
    with open(os.path.join(folder, name)) as f:
        lines = f.readlines()
    feedback = {"title": lines[0], "name": lines[1], "date": lines[2], "feedback": lines[3]}
    response = requests.post(url, json=feedback)
    if response.status_code != 201:
        print("failed", name, response.status_code, response.text)
        sys.exit(1)
    print(response.json()["id"])
