"""Errors a user can cause; the CLI turns them into one line and exit status 2."""


class FlopcastError(ValueError):
    """Bad input or a question flopcast has no model for; the message says which and why."""


class UnsupportedError(FlopcastError):
    """flopcast has no model for this case; the message gives the reason."""


def validation_message(exc) -> str:
    """One line from a pydantic ValidationError: 'field.path: what is allowed'."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg
