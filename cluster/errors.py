"""Errors that reach the user as clear one-line messages (never a traceback)."""


class SealerError(Exception):
    """A problem the user can act on. str() is the whole message; the CLI prints it and exits 1."""

    exit_code = 1


class InputError(SealerError):
    """Bad input: one or more one-line problems, each naming the file and the place in it."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
