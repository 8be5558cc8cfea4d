"""Executors: the infra driver (SSH), rootfs distribution, runtimes and the DAG scheduler."""
