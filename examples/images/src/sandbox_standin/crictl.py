"""SANDBOX STAND-IN crictl: the containers the kubelet runs."""

from .cmdline import Refused
from .common import fail
from .kubelet import static_pod_command
from .services import service_pid, stop_service


def tool_crictl(version, argv):
    """The kubelet's static pods as containers: `ps --name NAME -q` and `stop ID`. A stopped
    static pod is started again by the kubelet (keep_static_pods)."""
    if len(argv) == 4 and argv[0] == "ps" and argv[1] == "--name" and argv[3] == "-q":
        pid = service_pid(argv[2]) if static_pod_command(argv[2]) else None
        if pid:
            print(f"{argv[2]}-{pid}")
        return
    if len(argv) == 2 and argv[0] == "stop":
        name, _, pid = argv[1].rpartition("-")
        if not static_pod_command(name) or str(service_pid(name)) != pid:
            fail(f'container "{argv[1]}" not found')
        stop_service(name)
        print(argv[1])
        return
    raise Refused
