"""The client's suite runs against a real appliance: tests/clients/test_clients.py starts one and passes

SCORM_APPLIANCE_URL, SCORM_APPLIANCE_KEY (an admin key), SCORM_APPLIANCE_LIMITED_KEY (a key of a
tenant limited to a few requests a minute), COURSE_ZIP (a real SCORM package) and WEBHOOK_VECTOR (a
request the server's own signing code signed) in the environment.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from scorm_appliance_client import Client, Package  # noqa: E402


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this suite through tests/clients/test_clients.py (make test)")
    return value


@pytest.fixture(scope="session")
def url() -> str:
    return env("SCORM_APPLIANCE_URL")


@pytest.fixture(scope="session")
def key() -> str:
    return env("SCORM_APPLIANCE_KEY")


@pytest.fixture(scope="session")
def course_zip() -> Path:
    return Path(env("COURSE_ZIP"))


@pytest.fixture(scope="session")
def vector() -> dict[str, Any]:
    return json.loads(env("WEBHOOK_VECTOR"))


@pytest.fixture
def client(url: str, key: str) -> Iterator[Client]:
    with Client(url, key) as c:
        yield c


@pytest.fixture(scope="session")
def ready_package(url: str, key: str, course_zip: Path) -> Package:
    """One uploaded, processed package for the session tests."""
    with Client(url, key) as c:
        return c.wait_until_ready(c.upload_package(course_zip, title="Python client suite").id, timeout=60)
