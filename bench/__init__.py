"""Benchmarks of the video-upload service: `python -m bench` (`make bench`).

They answer how fast, how much memory and how many S3 calls: upload throughput against a raw
ASGI sink, HEAD and creation latency, S3 requests per MiB, many slow clients at once, and the
cleanup of expired uploads. Every section starts what it measures itself, on loopback ports with
throwaway directories. See docs/performance.md.
"""
