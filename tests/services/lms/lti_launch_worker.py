"""`python -m tests.services.lms.lti_launch_worker PORT`: one appliance worker of test_lti_launch_workers.

What `scorm-appliance serve` runs (`create_app` under uvicorn, on 127.0.0.1:PORT), with the settings of
the environment (`SCORM_APPLIANCE_DATA_DIR`, `…_DATABASE`, `…_DATABASE_SCHEMA`, `…_OUTBOUND_ALLOW`), and
one change: creating a session first waits `SLOW_SECONDS`. Two launches of one link sent to two workers
at once are then both inside their find-or-start at the same time — the window every launch has, only
wide enough that the test does not hang on timing luck. Without a guard in the database both workers
find no session and each starts one.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import uvicorn

from appliance.config import load_config
from appliance.faces.app import create_app
from appliance.services.lms.lti import launch

SLOW_SECONDS = 0.5


def main(port: int) -> None:
    config = load_config({})
    create = launch.create_session

    def slow_create(*args: Any, **kwargs: Any) -> Any:
        time.sleep(SLOW_SECONDS)
        return create(*args, **kwargs)

    launch.create_session = slow_create  # type: ignore[assignment]
    uvicorn.run(create_app(config), host="127.0.0.1", port=port, lifespan="on", log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]))
