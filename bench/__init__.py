"""Benchmarks of the video-upload service: `python -m bench` (`make bench`). docs/performance.md
says what each section measures and how to read the numbers."""
