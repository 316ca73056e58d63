"""The SCORM API state machine (rte-rules.md section 2); mirrored by static/runtime/api.js.

`ApiInstance` is one API object serving one SCO session: Not Initialized -> Running -> Terminated
(1.2 returns to Not Initialized after LMSFinish). It answers every call synchronously with the
SCORM strings ("true"/"false", values, error codes) and keeps the "last error". Persisting is not its
job: Commit and Terminate hand the elements changed since the last successful commit to an injected
`committer(changes, terminate) -> bool`; False makes the call fail with the commit-failure code.
The LMS end-of-session rules (attempt.end_session) run where the terminate commit is received.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from appliance.core.scorm.datamodel import DataModel

Committer = Callable[[dict[str, str], bool], bool]

NOT_INITIALIZED = "not_initialized"
RUNNING = "running"
TERMINATED = "terminated"


class ApiInstance:
    """API / API_1484_11 for one SCO session over a DataModel."""

    def __init__(
        self,
        scorm_version: str,
        cmi: Mapping[str, str] | None = None,
        *,
        committer: Committer | None = None,
        data_access: Sequence[Sequence[bool]] = (),
    ) -> None:
        self.model = DataModel(scorm_version, cmi, data_access=data_access)
        self.table = self.model.table
        self.rules = self.table["rte"]
        self.state = NOT_INITIALIZED
        # Elements written since the last accepted commit, in first-write order: replaying them in that
        # order (as the server's apply_patch does) meets the dependencies they met here (id before the
        # record's other children, type before responses, records in index order).
        self.changed: dict[str, None] = {}
        self._committer = committer
        self._last_error = 0
        self._diagnostic = ""

    @property
    def cmi(self) -> dict[str, str]:
        """The current CMI values (the DataModel's dict)."""
        return self.model.cmi

    # --------------------------------------------------------------------------------- error state
    def _result(self, code: int, answer: str, diagnostic: str = "") -> str:
        self._last_error = code
        self._diagnostic = diagnostic
        return answer

    def _state_error(self, call: str) -> int:
        """The code for `call` in the current state (0 when the call is allowed)."""
        return int(self.rules[call].get(self.state, 0))

    def get_last_error(self) -> str:
        """GetLastError / LMSGetLastError: never changes the error state."""
        return str(self._last_error)

    def get_error_string(self, code: str) -> str:
        """GetErrorString: the short text of a known code, "" for an unknown one."""
        return str(self.table["error_strings"].get(str(code), ""))

    def get_diagnostic(self, code: str = "") -> str:
        """GetDiagnostic: details of the last error for "" or its code; else the code's text."""
        if str(code) in ("", str(self._last_error)):
            return self._diagnostic or self.get_error_string(str(self._last_error))
        return self.get_error_string(code)

    # ----------------------------------------------------------------------------------- session
    def initialize(self, argument: str = "") -> str:
        """Initialize("") / LMSInitialize("")."""
        code = self._state_error("initialize")
        if code:
            return self._result(code, "false", f"Initialize is not allowed in state {self.state}")
        if argument != "":
            return self._result(self.rules["argument"], "false", "the argument must be an empty string")
        self.state = RUNNING
        return self._result(0, "true")

    def terminate(self, argument: str = "") -> str:
        """Terminate("") / LMSFinish(""): implicit commit, then the session is over."""
        code = self._state_error("terminate")
        if code:
            return self._result(code, "false", f"Terminate is not allowed in state {self.state}")
        if argument != "":
            return self._result(self.rules["argument"], "false", "the argument must be an empty string")
        if not self._commit(terminate=True):
            return self._result(self.rules["terminate_failure"], "false", "the data could not be stored")
        self.state = self.rules["after_terminate"]
        return self._result(0, "true")

    def commit(self, argument: str = "") -> str:
        """Commit("") / LMSCommit(""): hand the changed elements to the committer."""
        code = self._state_error("commit")
        if code:
            return self._result(code, "false", f"Commit is not allowed in state {self.state}")
        if argument != "":
            return self._result(self.rules["argument"], "false", "the argument must be an empty string")
        if not self._commit(terminate=False):
            return self._result(self.rules["commit_failure"], "false", "the data could not be stored")
        return self._result(0, "true")

    def _commit(self, *, terminate: bool) -> bool:
        changes = {name: self.model.cmi[name] for name in self.changed if name in self.model.cmi}
        if self._committer is not None and not self._committer(changes, terminate):
            return False
        self.changed.clear()
        return True

    # ------------------------------------------------------------------------------------- data
    def get_value(self, element: str) -> str:
        """GetValue / LMSGetValue."""
        code = self._state_error("get")
        if code:
            return self._result(code, "", f"GetValue is not allowed in state {self.state}")
        value, code = self.model.get_value(element)
        return self._result(code, value, self.model.diagnostic)

    def set_value(self, element: str, value: str) -> str:
        """SetValue / LMSSetValue; a successful write is remembered for the next commit."""
        code = self._state_error("set")
        if code:
            return self._result(code, "false", f"SetValue is not allowed in state {self.state}")
        code = self.model.set_value(element, value)
        if code:
            return self._result(code, "false", self.model.diagnostic)
        self.changed.setdefault(element, None)
        return self._result(0, "true", self.model.diagnostic)
