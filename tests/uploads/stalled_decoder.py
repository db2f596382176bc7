"""Run by a decoding child as its main module (test helper, see
decoders_stalled_as_they_start in test_poison.py): the child stalls as it
starts, before it reads anything its parent sent it, as one does on a machine
too busy to run it. Its parent kills it."""

from __future__ import annotations

import time

if __name__ == "__mp_main__":
    time.sleep(3600)
