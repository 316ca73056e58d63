"""The library's fixtures: moto's S3 server and a bucket per test, for the packages-on-S3 tests."""

from tests.moto_s3 import moto_s3, s3_bucket  # noqa: F401 (fixtures)
