"""SANDBOX STAND-IN for kubeadm, kubelet, kubectl, k3s, k0s and systemctl. NOT the real tools.

No Kubernetes binary can be downloaded on the machines sealer is tested on, so the sandbox
ClusterImages carry this package instead. It accepts exactly the command lines that sealer's
runtimes use (the real tools' syntax) and refuses anything else with exit code 2.

What is real underneath: every control-plane node runs a member of a real etcd cluster (the
image carries Debian's etcd), and the control-plane stand-in (an HTTP server on the node's
address, port 6443) keeps the cluster's nodes, join tokens and a history of membership and
cordons in it. Any control-plane node serves the API; losing one loses nothing while etcd has
quorum, and nothing can be written without it. Members are added and removed with etcd's own
membership calls, as kubeadm, k3s and k0s do.

What a stand-in knows about its node is what the real tool would see: its flags, its config
files (read with a real YAML parser) and the host's hostname. Nothing sandbox-specific: the
images work on any Linux host with Python 3. Every invocation is logged to
/var/log/sandbox-standin/commands.log.

The images carry it as lib/sandbox-standin/sandbox_standin/, compiled; each tool's wrapper in
bin/ imports sandbox_standin.main and calls main() with TOOL VERSION ARGS... One module per
tool (kubeadm, kubelet, kubectl, helm, k3s, k0s, etcdctl, crictl, systemctl), the API server,
its store and its scheduler (where workloads' pods run), the kubelet's pods (kubelet_pods: their
images pulled by the host's real containerd, through containerd.py), and the shared parts
(common, cmdline, api_client, backoff, services, etcd, pki); main imports only the module of
the tool it runs.  (standard library + PyYAML)
"""
