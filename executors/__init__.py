"""Executors: the infra driver (SSH), rootfs distribution, runtimes and the DAG scheduler."""

import logging

# sealer's loggers say nothing unless a command asks for a log (--log-level, SEALER_LOG): no
# handler would let Python's last resort print their warnings, tracebacks included, to stderr.
logging.getLogger("sealer").addHandler(logging.NullHandler())
