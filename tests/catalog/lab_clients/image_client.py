#!/usr/bin/env python3
"""A supplier image uploader: every .jpeg in the folder, as files={'file': f}."""

import os
import sys

import requests

url, folder = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(folder)):
    if name.endswith(".jpeg"):
        with open(os.path.join(folder, name), "rb") as opened:
            r = requests.post(url, files={"file": opened})
        print(r.status_code)
        if r.status_code != 201:
            sys.exit(1)
