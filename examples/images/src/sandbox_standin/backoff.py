"""Trying again: the pauses between attempts, as the kubelet and the API server's writers take them."""

import sys
import time


class Unreachable(Exception):
    """The API server did not answer (down, busy, restarting): worth asking again."""


def with_backoff(attempt, patience=None, retry_on=Unreachable):
    """attempt() until it returns, waiting between tries as the kubelet does (0.2 s, doubling
    up to 7 s). retry_on: the errors worth another try; patience: seconds after which the last
    one stands (None: try for ever)."""
    deadline = None if patience is None else time.time() + patience
    delay = 0.2
    while True:
        try:
            return attempt()
        except retry_on as e:
            if deadline is not None and time.time() > deadline:
                raise
            if not isinstance(e, SystemExit):  # api() has said why on stderr already
                print(f"{e}; retrying", file=sys.stderr, flush=True)
            time.sleep(delay)
            delay = min(delay * 2, 7.0)


def backoff(attempt):
    """Writers that lost a compare-and-swap spread out before they try again."""
    import random

    time.sleep(random.uniform(0.005, 0.01 * min(attempt + 1, 20)))
