"""User-facing errors: each prints as one clear line and exits with status 2.

Anything raised from the library that is the user's to fix (bad expression,
unknown name, bad configuration, missing data) derives from `GpengineError`;
the CLI turns it into one line on stderr. Everything else is a bug and keeps
its traceback.
"""


def did_you_mean(name: object, choices) -> str:
    """"; did you mean 'X'?" for the one choice closest to a misspelt `name`, or "" when none is close."""
    import difflib

    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class GpengineError(Exception):
    """A problem with the user's input or environment, not a bug."""


class ParseError(GpengineError, ValueError):
    """An expression that cannot be read; the message points at the position."""

    def __init__(self, message: str, text: str = "", position: int | None = None):
        self.text = text
        self.position = position
        if position is not None:
            message = f"{message} at column {position + 1} of {text!r}"
        super().__init__(message)


class ConfigError(GpengineError, ValueError):
    """A configuration key or value that is not allowed; names the key."""


class OptionError(ConfigError):
    """A bad evaluator option. `owner` names the evaluator: its class until the plugin loader,
    which knows the name users type, renames it (`renamed`)."""

    def __init__(self, template: str, owner: str):
        self.template, self.owner = template, owner  # the template holds "{owner}" where the name goes
        super().__init__(template.replace("{owner}", owner))

    def renamed(self, owner: str) -> "OptionError":
        return OptionError(self.template, owner)

    def __reduce__(self):  # from a worker process: pickle rebuilds it from these, not from the message
        return OptionError, (self.template, self.owner)


class PluginError(GpengineError):
    """An evaluator or primitive set that cannot be found or does not honour the contract."""


class DataError(GpengineError):
    """A dataset that is missing, truncated or corrupt."""


class SaveError(GpengineError):
    """A search's journal or checkpoint cannot be written (disk full, folder gone or read-only):
    the search stops; what was written before is intact and `gpengine resume` continues from it."""


class GpengineWarning(UserWarning):
    """Something asked for that works but costs more than the user likely expects; the CLI prints it as one line."""
