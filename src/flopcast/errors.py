"""Errors a user can cause; the CLI turns them into one line and exit status 2."""

#: Longest echo of a received value in an error message.
MAX_ECHO_CHARS = 60


class FlopcastError(ValueError):
    """Bad input or a question flopcast has no model for; the message says which and why."""


class UnsupportedError(FlopcastError):
    """flopcast has no model for this case; the message gives the reason."""


def echo(value) -> str:
    """``value`` as shown in a message: its repr, cut to MAX_ECHO_CHARS (a 500-digit number
    or a pasted file must not fill the terminal)."""
    try:
        text = repr(value)
    except ValueError:  # int too long for repr (Python's 4300-digit limit)
        return "<a number too long to print>"
    return text if len(text) <= MAX_ECHO_CHARS else text[:MAX_ECHO_CHARS - 1] + "…"


def validation_message(exc) -> str:
    """One line from a pydantic ValidationError: 'field.path: what is allowed (got value)'."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = " ".join(err["msg"].removeprefix("Value error, ").split())
    value = err.get("input")
    if err.get("type") != "value_error" and not isinstance(value, (dict, list, type(None))) \
            and not hasattr(value, "model_fields"):
        msg = f"{msg}; got {echo(value)}"
    return f"{loc}: {msg}" if loc else msg
