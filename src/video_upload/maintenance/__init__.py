"""Maintenance jobs: expired-upload cleanup and orphan collection, once or periodically."""

from video_upload.maintenance.cleanup import CleanupReport, VideoService, cleanup_once
from video_upload.maintenance.periodic import PeriodicCleanup, start_periodic_cleanup

__all__ = [
    "CleanupReport",
    "PeriodicCleanup",
    "VideoService",
    "cleanup_once",
    "start_periodic_cleanup",
]
