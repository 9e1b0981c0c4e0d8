"""Benchmarks for the video-upload service: `python -m bench` (or `make bench`).

Every section starts what it measures itself (the service as a real `video-upload serve`
subprocess, a raw ASGI sink under uvicorn, moto's S3 server behind a counting proxy), on loopback
ports with throwaway data directories, and reports one table, a JSON file and a PNG chart under
`bench/results/`. See the README's Benchmarks section.
"""
