"""moto's S3 server on 127.0.0.1 for the S3 tests: its secret key, a free port, a pyarrow client.

The ``moto_s3`` fixture (tests/sweep/conftest.py) starts the server; the secret key is unique, so any
file that holds it (results, Ray's session logs, S3 objects) is a leak.
"""

from __future__ import annotations

import socket

SECRET = "attrsearchS3secret" + "9d41c7" * 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3fs(env):
    import pyarrow.fs

    return pyarrow.fs.S3FileSystem(
        access_key=env["AWS_ACCESS_KEY_ID"],
        secret_key=env["AWS_SECRET_ACCESS_KEY"],
        region="us-east-1",
        endpoint_override=env["AWS_ENDPOINT_URL"],
        scheme="http",
        allow_bucket_creation=True,
    )
