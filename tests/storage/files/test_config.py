"""The `files` setting: `local` or an s3:// URL, with its details from settings and the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.storage.files.config import (
    LocalFilesConfig,
    S3FilesConfig,
    files_settings,
    open_file_store,
    parse_files,
)
from appliance.storage.files.local import LocalFileStore
from appliance.storage.files.s3 import S3FileStore
from tests.moto_s3 import MotoS3

DATA = Path("/srv/appliance")


def test_local_is_the_default() -> None:
    assert parse_files({}, data_dir=DATA) == LocalFilesConfig(root=DATA, durable=True)
    assert parse_files({"files": "local"}, data_dir=DATA) == LocalFilesConfig(root=DATA)
    assert isinstance(open_file_store(parse_files({}, data_dir=DATA)), LocalFileStore)


def test_an_s3_url_with_a_prefix_and_query() -> None:
    config = parse_files(
        {"files": "s3://my-bucket/prod/appliance/?endpoint=http://127.0.0.1:9000&region=eu-west-1"}, data_dir=DATA
    )
    assert config == S3FilesConfig(
        bucket="my-bucket",
        prefix="prod/appliance/",
        endpoint_url="http://127.0.0.1:9000",
        region="eu-west-1",
        addressing_style="path",  # a custom endpoint (MinIO, moto) is addressed by path unless told
    )
    bare = parse_files({"files": "s3://my-bucket"}, data_dir=DATA)
    assert isinstance(bare, S3FilesConfig)
    assert (bare.prefix, bare.endpoint_url, bare.addressing_style, bare.serve) == ("", None, "auto", "stream")


def test_settings_win_over_the_url_and_the_environment_over_settings() -> None:
    values = files_settings(
        {"files": "s3://b-1/p?region=us-west-2", "files_region": "eu-central-1", "files_serve": "redirect"},
        {"SCORM_APPLIANCE_FILES_SIGNED_URL_SECONDS": "120", "SCORM_APPLIANCE_FILES_REGION": "ap-south-1"},
    )
    config = parse_files(values, data_dir=DATA)
    assert isinstance(config, S3FilesConfig)
    assert (config.region, config.serve, config.signed_url_seconds) == ("ap-south-1", "redirect", 120)


def test_credentials_come_from_settings_never_from_the_url() -> None:
    config = parse_files(
        {"files": "s3://bucket", "files_access_key_id": "AK", "files_secret_access_key": "SECRET"}, data_dir=DATA
    )
    assert isinstance(config, S3FilesConfig) and config.access_key_id == "AK"
    assert "SECRET" not in repr(config) and "AK" not in repr(config)
    with pytest.raises(ValueError, match="credentials"):
        parse_files({"files": "s3://AK:SECRET@bucket/p"}, data_dir=DATA)
    with pytest.raises(ValueError, match="go together"):
        parse_files({"files": "s3://bucket", "files_access_key_id": "AK"}, data_dir=DATA)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"files": "s4://bucket"}, "must be 'local' or an s3://"),
        ({"files": "s3://"}, "must be 'local' or an s3://"),
        ({"files": "/var/files"}, "must be 'local' or an s3://"),
        ({"files": "s3://Bad_Bucket"}, "not a valid bucket name"),
        ({"files": "s3://ab"}, "not a valid bucket name"),
        ({"files": "s3://bucket/a/../b"}, "not a plain folder path"),
        ({"files": "s3://bucket?colour=blue"}, "unknown URL parameter"),
        ({"files": "s3://bucket", "files_endpoint": "ftp://x"}, "files_endpoint"),
        ({"files": "s3://bucket", "files_serve": "proxy"}, "files_serve"),
        ({"files": "s3://bucket", "files_addressing_style": "dns"}, "files_addressing_style"),
        ({"files": "s3://bucket", "files_signed_url_seconds": "86400"}, "files_signed_url_seconds"),
        ({"files": "s3://bucket", "files_signed_url_seconds": "0"}, "files_signed_url_seconds"),
        ({"files": "s3://bucket", "files_redirect_min_bytes": "-1"}, "files_redirect_min_bytes"),
        ({"files": "local", "files_region": "eu-west-1"}, "only apply to an s3:// URL"),
    ],
)
def test_bad_settings_name_the_setting(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_files(values, data_dir=DATA)


def test_the_parsed_config_reaches_a_real_server(moto_s3: MotoS3, s3_bucket: str) -> None:
    bucket = s3_bucket
    values = files_settings(
        {"files": f"s3://{bucket}/deploy?endpoint={moto_s3.endpoint_url}"},
        {"SCORM_APPLIANCE_FILES_ACCESS_KEY_ID": "k", "SCORM_APPLIANCE_FILES_SECRET_ACCESS_KEY": "s"},
    )
    store = open_file_store(parse_files(values, data_dir=DATA))
    assert isinstance(store, S3FileStore)
    store.put("ten_x", "hello.txt", iter([b"hello"]), max_bytes=10)
    assert moto_s3.client().get_object(Bucket=bucket, Key="deploy/tenants/ten_x/hello.txt")["Body"].read() == b"hello"
