"""One error type for everything a user can get wrong.

The CLI prints ``dlbench: error: <message>`` on one line and exits non-zero; the message names
the problem and, where there is one, the fix. Nothing else is printed (no traceback).
"""


class DlbenchError(Exception):
    """A problem the user can fix (bad input, missing file, absent device)."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = _end(self.message)
        if self.hint:
            text += f" ({_end(self.hint)})"
        return " ".join(text.split())


def _end(text: str) -> str:
    """``text`` without a sentence's final period; a path at the end (``in .``, ``runs/..``) is kept whole."""
    text = text.rstrip()
    if text.endswith(".") and not text.endswith(("..", " .", "/.")) and text != ".":
        return text[:-1]
    return text


class DataError(DlbenchError):
    """A data file is missing, corrupt or inconsistent."""


class SpecError(DlbenchError):
    """A study spec or step config is invalid."""


class OutputError(DlbenchError):
    """An output location cannot be made or written (a file in the way, no permission, a read-only place)."""


class DeviceError(DlbenchError):
    """A device or backend was asked for but is not available."""


class StepFailed(DlbenchError):
    """A step ran but failed (e.g. NaN loss); what it wrote so far is kept."""

    exit_code = 1
