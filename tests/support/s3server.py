"""boto3 helpers to set up and inspect the tests' S3 server (SeaweedFS, see `seaweedfs.py`).

The credentials are the ones the server's identity config grants and the tests' settings use.
"""

from __future__ import annotations

from typing import Any

import boto3  # type: ignore[import-untyped]

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def s3_client(endpoint: str) -> Any:
    """A plain boto3 client for the S3 server (for setting up and inspecting buckets)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def create_bucket(endpoint: str, bucket: str) -> None:
    s3_client(endpoint).create_bucket(Bucket=bucket)


def leftover_objects(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    """Keys of every object in the bucket under `prefix`."""
    paginator = s3_client(endpoint).get_paginator("list_objects_v2")
    return [
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]


def pending_multipart_uploads(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    """Object keys of every multipart upload in the bucket under `prefix` not yet completed."""
    paginator = s3_client(endpoint).get_paginator("list_multipart_uploads")
    return [
        upload["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for upload in page.get("Uploads", [])
    ]


def object_bytes(endpoint: str, bucket: str, key: str) -> bytes:
    data: bytes = s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def object_etag(endpoint: str, bucket: str, key: str) -> str:
    """The object's ETag without quotes; `<md5>-<n>` for an object completed from n parts."""
    etag: str = s3_client(endpoint).head_object(Bucket=bucket, Key=key)["ETag"]
    return etag.strip('"')
