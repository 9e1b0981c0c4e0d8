"""Memory the host has already backed, for the benchmark's own writes to the disk.

On a virtual machine whose balloon device reports free pages to the host (Linux's free page
reporting, as on Firecracker), memory that stays free for about two seconds is handed back to the
host, and the next write to each of those pages waits for the host to back it again. On the AMD
machine of the tenth session, 256 MiB written into the page cache by one process in a tight loop
took 0.06 s when the pages had been freed a moment before and 0.4 to 0.9 s after 2.5 s idle.

The servers did not show it: the raw sink and the service, each uploading 256 MiB after 3 s
idle, ran as fast with the memory recycled first as without (eight rounds each). The disk probe
(`bench.disk`) did, by a factor of up to five; it runs right after a round of uploads whose files
were deleted by then, so it now recycles first. Its figure is a ceiling for the servers, and a
ceiling must not be pushed down by the machine's idle time.

`recycle_free_pages(size)` writes `size` bytes to a scratch file in the page cache and deletes
it, so the next `size` bytes asked for come from pages freed a moment ago (the kernel hands out
recently freed pages first and reported ones last). It never waits for the disk: the file is gone
before any writeback starts. Without free page reporting it only costs a memory copy.
"""

from __future__ import annotations

import os
import tempfile

from bench.stats import MIB

_PIECE = bytes(4 * MIB)


def recycle_free_pages(size: int) -> None:
    """Touch `size` bytes of page cache (rounded up to 4 MiB) and free them again at once."""
    fd, path = tempfile.mkstemp(prefix="bench-pages-")
    try:
        os.unlink(path)  # the pages go when the descriptor closes, written back or not
        for _ in range(-(-size // len(_PIECE))):
            os.write(fd, _PIECE)
    finally:
        os.close(fd)
