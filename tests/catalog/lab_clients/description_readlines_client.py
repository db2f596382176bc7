#!/usr/bin/env python3
"""A supplier description uploader written with readlines(): the weight goes
as the line reads ("500 lbs\n"), every field unstripped, posted as JSON."""

import os
import sys

import requests

url, folder = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(folder)):
    if not name.endswith(".txt"):
        continue
    with open(os.path.join(folder, name)) as f:
        lines = f.readlines()
    fruit = {
        "name": lines[0],
        "weight": lines[1],
        "description": lines[2],
        "image_name": name.replace(".txt", ".jpeg"),
    }
    response = requests.post(url, json=fruit)
    if response.status_code != 201:
        print("failed", name, response.status_code, response.text)
        sys.exit(1)
    print(response.json()["id"])
