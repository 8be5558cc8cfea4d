"""Errors that reach the user as clear one-line messages (never a traceback)."""


class SealerError(Exception):
    """A problem the user can act on. str() is the whole message; the CLI prints it and exits 1."""

    exit_code = 1


class InputError(SealerError):
    """Bad input: one or more one-line problems, each naming the file and the place in it."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class UnreadHosts(SealerError):
    """A refresh could not read hosts the plan needs: no plan can say what they need.
    hosts: ip -> why, in words (down, timed out, authentication failed, host key changed).
    joining: the hosts about to join that did not answer either (ip -> why), named in the same
    error so that one look shows every host to fix."""

    def __init__(self, hosts: dict[str, str], findings: list = (), joining: dict | None = None):
        self.hosts = dict(hosts)
        self.findings = list(findings)  # the whole refresh's drift, for the renderer
        self.joining = dict(joining or {})
        them = "them" if len(hosts) > 1 else "it"
        also = (
            f"; {len(self.joining)} host(s) about to join did not answer either "
            f"({', '.join(self.joining)})"
            if self.joining
            else ""
        )
        super().__init__(
            f"cannot plan: {len(hosts)} host{'s' if len(hosts) > 1 else ''} of the Clusterfile "
            f"could not be read ({', '.join(hosts)}), so sealer cannot tell what "
            f"{'they need' if len(hosts) > 1 else 'it needs'}; fix the connection, or plan "
            f"around {them}: --refresh=false plans from the state as recorded, --target HOST "
            f"plans only other hosts{also}"
        )
