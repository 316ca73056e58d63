"""The cmi5 vocabulary: verb, category, extension and activity type IRIs (cmi5 §9), in one place."""

from __future__ import annotations

LAUNCHED = "http://adlnet.gov/expapi/verbs/launched"
INITIALIZED = "http://adlnet.gov/expapi/verbs/initialized"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
PASSED = "http://adlnet.gov/expapi/verbs/passed"
FAILED = "http://adlnet.gov/expapi/verbs/failed"
TERMINATED = "http://adlnet.gov/expapi/verbs/terminated"
ABANDONED = "https://w3id.org/xapi/adl/verbs/abandoned"
WAIVED = "https://w3id.org/xapi/adl/verbs/waived"
SATISFIED = "https://w3id.org/xapi/adl/verbs/satisfied"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"

AU_VERBS = frozenset({INITIALIZED, COMPLETED, PASSED, FAILED, TERMINATED})  # what an AU may send as cmi5 defined
LMS_VERBS = frozenset({LAUNCHED, ABANDONED, WAIVED, SATISFIED})  # what only the LMS writes
SATISFACTION_VERBS = frozenset({COMPLETED, PASSED, FAILED})  # not in Browse or Review mode (§10.2.2)

CATEGORY_CMI5 = "https://w3id.org/xapi/cmi5/context/categories/cmi5"
CATEGORY_MOVE_ON = "https://w3id.org/xapi/cmi5/context/categories/moveon"

EXT_SESSION_ID = "https://w3id.org/xapi/cmi5/context/extensions/sessionid"
EXT_MASTERY_SCORE = "https://w3id.org/xapi/cmi5/context/extensions/masteryscore"
EXT_LAUNCH_MODE = "https://w3id.org/xapi/cmi5/context/extensions/launchmode"
EXT_LAUNCH_URL = "https://w3id.org/xapi/cmi5/context/extensions/launchurl"
EXT_MOVE_ON = "https://w3id.org/xapi/cmi5/context/extensions/moveon"
EXT_LAUNCH_PARAMETERS = "https://w3id.org/xapi/cmi5/context/extensions/launchparameters"
EXT_REASON = "https://w3id.org/xapi/cmi5/context/extensions/reason"

TYPE_BLOCK = "https://w3id.org/xapi/cmi5/activitytype/block"
TYPE_COURSE = "https://w3id.org/xapi/cmi5/activitytype/course"

LAUNCH_MODES = ("Normal", "Browse", "Review")
LAUNCH_DATA_STATE_ID = "LMS.LaunchData"
LEARNER_PREFERENCES_PROFILE_ID = "cmi5LearnerPreferences"
WAIVE_REASONS = ("Tested Out", "Equivalent AU", "Equivalent Outside Activity", "Administrative")  # §9.5.5.1
