"""The one exception type for errors a user can cause and fix."""


class DartHubError(Exception):
    """A problem the user can act on. The message says what to do; the CLI prints it on one line."""
