"""`python -m video_upload` and the `video-upload` command.

`run` imports the command line itself, so that Ctrl-C at any moment, even during the second or
so the imports take, ends the command quietly with status 130 rather than with a traceback.
"""

from __future__ import annotations

import sys


def run() -> int:
    try:
        from video_upload.cli import main

        return main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(run())
