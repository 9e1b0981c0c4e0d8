"""The resumable command-line uploader: `video-upload upload` and `video-upload videos`.

`commands` wires the subcommands into the `video-upload` parser; `uploader` runs one upload
(REST init, tus PATCHes with checksums and retries, REST complete); `api` speaks HTTP; `state`
keeps the fingerprints that let an interrupted upload continue where the server left it.
"""

from __future__ import annotations

from video_upload.client.commands import register

__all__ = ["register"]
