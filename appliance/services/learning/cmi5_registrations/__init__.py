"""cmi5 registrations: a session on a cmi5 package version is one registration (cmi5 §8, §9, §10, §11).

The pure rules live in appliance.core.cmi5 (au_rules: what an AU may send; move_on: what satisfies an AU, a
block, the course). This package is the LMS around them, on the tenant database:

- `register` (inside the session's INSERT) gives the registration its UUID, actor and one LMS-generated
  activity id per AU (§8.1.5: not the publisher's id), and satisfies the NotApplicable AUs (9.6.1.1-3).
- `launch` starts an AU session: abandons the registration's open one (§9.3.6), writes LMS.LaunchData
  (§10) and the `launched` statement, and builds the launch URL with its five parameters (§8.1).
- `fetch` answers the one-time fetch URL with the AU session's auth token once (§8.2).
- `authenticate` / `restrict` are the LRS face's hook (appliance.faces.api.xapi.app): the token is a Basic
  credential for its own registration, AU and actor only, and only between fetch and the session's end.
- `store_statements` is the statements handler's hook: every statement sent with a token goes
  through au_rules.check and au_rules.record in the insert's transaction; then the LMS writes
  `satisfied` for what became satisfied, and the session's results follow (status, completion,
  success, score, and the same session events and analytics as SCORM sessions).
- `waive`, `abandon`: the API's operations.

The package, by noun: `records` (the registration's rows, the session JSON's `cmi5`), `results` (the
LMS's statements, satisfaction, the session's result fields), `launches`, `tokens` (fetch, the auth
token, what it may reach), `au_statements`, `abandonment`, `waivers`. The names below are its API.
"""

from appliance.services.learning.cmi5_registrations.abandonment import abandon, abandon_stale
from appliance.services.learning.cmi5_registrations.au_statements import IDLE_SECONDS, store_statements
from appliance.services.learning.cmi5_registrations.launches import (
    RETURNED,
    Launch,
    actor_for,
    api_origin,
    launch,
    launch_url_of,
    register,
    return_url_of,
)
from appliance.services.learning.cmi5_registrations.records import (
    course_of,
    is_registration,
    progress_json,
    progress_of,
)
from appliance.services.learning.cmi5_registrations.results import AUTHORITY, RESULT_EVENTS, XAPI_VERSION
from appliance.services.learning.cmi5_registrations.tokens import (
    FETCH_ALREADY_USED,
    FETCH_EXPIRED,
    FETCH_INVALID,
    USER_PREFIX,
    AuGrant,
    Denied,
    FetchRefused,
    authenticate,
    fetch,
    restrict,
)
from appliance.services.learning.cmi5_registrations.waivers import RESULT_EXT_REASON, waive

__all__ = [
    "AUTHORITY",
    "AuGrant",
    "Denied",
    "FETCH_ALREADY_USED",
    "FETCH_EXPIRED",
    "FETCH_INVALID",
    "FetchRefused",
    "IDLE_SECONDS",
    "Launch",
    "RESULT_EVENTS",
    "RESULT_EXT_REASON",
    "RETURNED",
    "USER_PREFIX",
    "XAPI_VERSION",
    "abandon",
    "abandon_stale",
    "actor_for",
    "api_origin",
    "authenticate",
    "course_of",
    "fetch",
    "is_registration",
    "launch",
    "launch_url_of",
    "progress_json",
    "progress_of",
    "register",
    "restrict",
    "return_url_of",
    "store_statements",
    "waive",
]
