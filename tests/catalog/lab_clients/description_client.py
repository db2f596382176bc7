#!/usr/bin/env python3
"""A supplier description uploader: name, weight as an int, description,
image_name, posted as a form (data=...)."""

import os
import sys

import requests

url, folder = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(folder)):
    if not name.endswith(".txt"):
        continue
    with open(os.path.join(folder, name)) as f:
        lines = [line.strip() for line in f]
    fruit = {
        "name": lines[0],
        "weight": int(lines[1].strip(" lbs")),
        "description": lines[2],
        "image_name": name.replace(".txt", ".jpeg"),
    }
    response = requests.post(url, data=fruit)
    response.raise_for_status()
    print(response.status_code, response.json()["id"])
