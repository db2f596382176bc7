"""A caller whose decode never ends (test helper, see
test_a_decoder_dies_with_the_process_that_asked_for_it in test_poison.py).

Run as a script (``python -m tests.uploads.orphaned_decoder``), it asks
uploads.sandbox to decode an image, with this module as the decoding child's
main. In the child, the decode writes the child's pid to the file named by
DECODER_STARTED_FILE, once it runs (its ceiling set, as it would be set to
die with its parent), and never ends.
"""

from __future__ import annotations

import io
import os
import time
from multiprocessing import spawn
from pathlib import Path
from typing import Any, NoReturn

from PIL import Image

from uploads import processing, sandbox


def _never_ends(*args: Any, **kwargs: Any) -> NoReturn:
    started = Path(os.environ["DECODER_STARTED_FILE"])
    written = started.with_suffix(".part")
    written.write_text(str(os.getpid()))
    written.rename(started)
    while True:
        time.sleep(3600)


def _main() -> None:
    prepared = spawn.get_preparation_data

    def from_here(name: str) -> dict[str, Any]:
        data: dict[str, Any] = prepared(name)
        data.pop("init_main_from_path", None)
        data["init_main_from_name"] = __spec__.name if __spec__ else __name__
        return data

    spawn.get_preparation_data = from_here
    png = io.BytesIO()
    Image.new("RGB", (64, 64)).save(png, "PNG")
    sandbox.process(
        png.getvalue(),
        processing.Preset("small", widths=(32,)),
        max_pixels=50_000_000,
        memory_limit_mb=1024,
        time_limit=None,
    )


if __name__ == "__mp_main__":
    processing.process = _never_ends
elif __name__ == "__main__":
    _main()
