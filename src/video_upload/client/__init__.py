"""The command-line client: `video-upload upload`, `videos` and `sessions create|list`.

`commands` wires the subcommands into the `video-upload` parser; `uploader` runs one upload
(REST init, tus PATCHes with checksums and retries, REST complete); `media` reads the local
file's content type and duration; `api` speaks HTTP; `state` keeps the fingerprints that let an
interrupted upload continue where the server left it; `progress` draws on the terminal. Nothing
of the server is imported: the client knows it only through HTTP.
"""

from __future__ import annotations

from video_upload.client.commands import register

__all__ = ["register"]
