"""Fake `kind`, `k3d` and `docker` for ksail's integration tests (testing.md "Fake executables").

tests/support/fake_tools.rs installs this file three times into the test's `bin/` directory, with
the shebang pointing at the system python3 and the two paths below filled in. The program's
basename says which tool it plays.

Every invocation:
1. appends `{"argv": [...], "env": {"KUBECONFIG": ...}, "stdin": ...}` to the calls file;
2. answers from the state file (clusters, containers, networks), or from the first scripted
   override whose `argv_prefix` matches (exit code, stdout, stderr; `times` limits its uses);
3. writes the state back. One lock file serialises concurrent invocations.

Only the subcommands ksail uses are implemented; anything else exits 2 naming itself, so a test
notices an unexpected call instead of getting a silent success.
"""

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys

STATE = "@STATE@"
CALLS = "@CALLS@"


class Reply:
    def __init__(self):
        self.out = []
        self.err = []

    def stdout(self, text):
        self.out.append(text)

    def stderr(self, text):
        self.err.append(text)


def main():
    tool = os.path.basename(sys.argv[0])
    argv = [tool] + sys.argv[1:]
    stdin = sys.stdin.read() if reads_stdin(argv) else None
    reply = Reply()
    with open(STATE + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(CALLS, "a") as calls:
            calls.write(
                json.dumps(
                    {
                        "argv": argv,
                        "env": {"KUBECONFIG": os.environ.get("KUBECONFIG")},
                        "stdin": stdin,
                    }
                )
                + "\n"
            )
        state = load_state()
        script = take_script(state, argv)
        if script is not None:
            code = script.get("exit", 0)
            reply.stdout(script.get("stdout", ""))
            reply.stderr(script.get("stderr", ""))
        else:
            handler = {"kind": kind, "k3d": k3d, "docker": docker}.get(tool)
            code = handler(argv[1:], state, stdin, reply) if handler else unsupported(argv, reply)
        save_state(state)
    sys.stdout.write("".join(reply.out))
    sys.stderr.write("".join(reply.err))
    sys.exit(code)


def reads_stdin(argv):
    """Only `docker exec -i` consumes stdin; everything else leaves it alone."""
    if argv[:2] != ["docker", "exec"]:
        return False
    for arg in argv[2:]:
        if not arg.startswith("-"):
            return False
        if arg in ("-i", "--interactive", "-it", "-ti"):
            return True
    return False


def load_state():
    try:
        with open(STATE) as f:
            state = json.load(f)
    except FileNotFoundError:
        state = {}
    for key, empty in (
        ("clusters", []),
        ("containers", {}),
        ("networks", []),
        ("network_labels", {}),
        ("scripts", []),
    ):
        state.setdefault(key, empty)
    return state


def save_state(state):
    tmp = STATE + ".partial"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
    os.replace(tmp, STATE)


def take_script(state, argv):
    for i, script in enumerate(state["scripts"]):
        prefix = script.get("argv_prefix", [])
        if argv[: len(prefix)] != prefix:
            continue
        times = script.get("times")
        if times is not None:
            if times <= 1:
                del state["scripts"][i]
            else:
                script["times"] = times - 1
        return script
    return None


def unsupported(argv, reply):
    reply.stderr("fake %s: unsupported invocation: %s\n" % (argv[0], shlex.join(argv)))
    return 2


def option(args, name, default=None):
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def positionals(args):
    """Arguments that are not options or option values (for the flags kind and k3d take)."""
    with_value = {"--name", "--config", "-o", "--output", "--kubeconfig", "--image", "--registry-config", "--label"}
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in with_value:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def find_cluster(state, name, distribution):
    for cluster in state["clusters"]:
        if cluster["name"] == name and cluster["distribution"] == distribution:
            return cluster
    return None


def container_id(name):
    return hashlib.sha256(name.encode()).hexdigest()


# ---------------------------------------------------------------------------------------- kind


def kind(args, state, stdin, reply):
    if args[:2] == ["get", "clusters"]:
        names = sorted(c["name"] for c in state["clusters"] if c["distribution"] == "Vanilla")
        if not names:
            reply.stderr("No kind clusters found.\n")
        for name in names:
            reply.stdout(name + "\n")
        return 0
    if args[:2] == ["get", "nodes"]:
        name = option(args, "--name", "kind")
        cluster = find_cluster(state, name, "Vanilla")
        nodes = cluster["nodes"] if cluster else []
        if not nodes:
            reply.stderr('No kind nodes found for cluster "%s".\n' % name)
        for node in nodes:
            reply.stdout(node + "\n")
        return 0
    if args[:2] == ["create", "cluster"]:
        name = option(args, "--name", "kind")
        if find_cluster(state, name, "Vanilla"):
            reply.stderr(
                'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "%s"\n'
                % name
            )
            return 1
        reply.stderr('Creating cluster "%s" ...\n' % name)
        return create_cluster(state, reply, name, "Vanilla", option(args, "--config"))
    if args[:2] == ["delete", "cluster"]:
        name = option(args, "--name", "kind")
        reply.stderr('Deleting cluster "%s" ...\n' % name)
        delete_cluster(state, name, "Vanilla")
        return 0
    if args[:2] == ["export", "kubeconfig"]:
        name = option(args, "--name", "kind")
        if not find_cluster(state, name, "Vanilla"):
            reply.stderr('ERROR: could not locate any control plane nodes for cluster named \'%s\'\n' % name)
            return 1
        reply.stderr('Set kubectl context to "kind-%s"\n' % name)
        return 0 if write_kubeconfig(state, reply, "kind-%s" % name) else 1
    if args[:1] == ["version"]:
        reply.stdout("kind v0.29.0 go1.24.2 linux/amd64\n")
        return 0
    return unsupported(["kind"] + args, reply)


# ----------------------------------------------------------------------------------------- k3d


def k3d(args, state, stdin, reply):
    if args[:2] == ["cluster", "list"]:
        clusters = [c for c in state["clusters"] if c["distribution"] == "K3s"]
        if option(args, "-o", option(args, "--output")) == "json":
            listed = [
                {
                    "name": c["name"],
                    "serversCount": 1,
                    "agentsCount": 0,
                    "nodes": [{"name": n, "role": "server"} for n in c["nodes"]],
                }
                for c in clusters
            ]
            reply.stdout(json.dumps(listed) + "\n")
        else:
            reply.stdout("NAME   SERVERS   AGENTS   LOADBALANCER\n")
            for c in clusters:
                reply.stdout("%s   1/1   0/0   true\n" % c["name"])
        return 0
    if args[:2] == ["cluster", "create"]:
        names = positionals(args[2:])
        name = names[0] if names else "k3s-default"
        if find_cluster(state, name, "K3s"):
            reply.stderr(
                "FATA[0000] Failed to create cluster '%s' because a cluster with that name already exists\n"
                % name
            )
            return 1
        reply.stderr("INFO[0000] Creating cluster '%s'\n" % name)
        return create_cluster(
            state, reply, name, "K3s", option(args, "--config"), option(args, "--registry-config")
        )
    if args[:2] == ["cluster", "delete"]:
        names = positionals(args[2:]) or ["k3s-default"]
        for name in names:
            if find_cluster(state, name, "K3s"):
                reply.stderr("INFO[0000] Deleting cluster '%s'\n" % name)
                delete_cluster(state, name, "K3s")
            else:
                reply.stderr("ERRO[0000] No nodes found for given cluster\n")
        return 0
    if args[:2] == ["node", "list"]:
        nodes = []
        for c in state["clusters"]:
            if c["distribution"] == "K3s":
                for node in c["nodes"]:
                    nodes.append(
                        {"name": node, "role": "server", "runtimeLabels": {"k3d.cluster": c["name"]}}
                    )
        reply.stdout(json.dumps(nodes) + "\n")
        return 0
    if args[:2] == ["kubeconfig", "merge"]:
        names = positionals(args[2:])
        if "--kubeconfig-merge-default" not in args and "-d" not in args:
            return unsupported(["k3d"] + args, reply)
        for name in names:
            if not find_cluster(state, name, "K3s"):
                reply.stderr("FATA[0000] failed to get cluster '%s'\n" % name)
                return 1
            if not write_kubeconfig(state, reply, "k3d-%s" % name):
                return 1
        return 0
    if args[:1] == ["version"]:
        reply.stdout("k3d version v5.8.3\nk3s version v1.31.5-k3s1 (default)\n")
        return 0
    return unsupported(["k3d"] + args, reply)


# ---------------------------------------------------------------------- clusters and kubeconfig


def tool_prefix(distribution):
    return "kind" if distribution == "Vanilla" else "k3d"


def registries_from_config(config):
    """The inline `registries.config` block of a k3d.yaml, dedented (k3d's `registries.yaml`)."""
    lines = (config or "").splitlines()
    for i, line in enumerate(lines):
        if line.rstrip() == "  config: |" and i > 0 and lines[i - 1].rstrip() == "registries:":
            block = []
            for rest in lines[i + 1 :]:
                if rest.startswith("    ") or not rest.strip():
                    block.append(rest[4:])
                else:
                    break
            return "\n".join(block).rstrip("\n") + "\n"
    return None


def create_cluster(state, reply, name, distribution, config_path, registry_config=None):
    if distribution == "Vanilla":
        nodes, network, image = ["%s-control-plane" % name], "kind", "kindest/node:v1.33.1"
        labels = {"io.x-k8s.kind.cluster": name, "io.x-k8s.kind.role": "control-plane"}
    else:
        nodes, network, image = ["k3d-%s-server-0" % name], "k3d-%s" % name, "rancher/k3s:v1.31.5-k3s1"
        labels = {"k3d.cluster": name, "k3d.role": "server"}
    config = None
    if config_path:
        try:
            with open(config_path) as f:
                config = f.read()
        except OSError as error:
            reply.stderr("ERROR: failed to read config file %s: %s\n" % (config_path, error))
            return 1
    files = {}
    if distribution == "Vanilla" and "/etc/containerd/certs.d" in (config or ""):
        # kind merges containerdConfigPatches into the node's containerd config.
        files["/etc/containerd/config.toml"] = (
            '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
        )
    if distribution == "K3s":
        # k3d writes --registry-config (else the config's registries.config) into every node
        # as k3s's registries.yaml; k3s reads it only when it starts.
        registries = registries_from_config(config)
        if registry_config:
            try:
                with open(registry_config) as f:
                    registries = f.read()
            except OSError as error:
                reply.stderr("FATA[0000] failed to read registry config %s: %s\n" % (registry_config, error))
                return 1
        if registries is not None:
            files["/etc/rancher/k3s/registries.yaml"] = registries
    context = "%s-%s" % (tool_prefix(distribution), name)
    if not write_kubeconfig(state, reply, context):
        return 1
    # k3d re-uses a network that exists and then leaves it on delete (pkg/client/cluster.go
    # ClusterPrepNetwork: "managed externally").
    external = network in state["networks"]
    if external and distribution == "K3s":
        reply.stderr("INFO[0000] Re-using existing network '%s'\n" % network)
    state["clusters"].append(
        {
            "name": name,
            "distribution": distribution,
            "nodes": nodes,
            "config": config,
            "network_external": external,
        }
    )
    if not external:
        state["networks"].append(network)
    for node in nodes:
        state["containers"][node] = {
            "image": image,
            "running": True,
            "labels": labels,
            "ports": [],
            "networks": [network],
            "files": dict(files),
        }
    return 0


def delete_cluster(state, name, distribution):
    cluster = find_cluster(state, name, distribution)
    if cluster is None:
        return
    state["clusters"].remove(cluster)
    for node in cluster["nodes"]:
        state["containers"].pop(node, None)
    remove_kubeconfig_context("%s-%s" % (tool_prefix(distribution), name))
    # k3d deletes the network it made unless a container it does not manage is still attached
    # (pkg/client/cluster.go ClusterDelete: "still in use"); kind leaves its shared network.
    network = "k3d-%s" % name
    if distribution == "K3s" and not cluster.get("network_external"):
        if network_members(state, network):
            sys.stderr.write(
                "WARN[0000] Failed to delete cluster network '%s' because it's still in use: is there another cluster using it?\n"
                % network
            )
        else:
            remove_network(state, network)


def kubeconfig_path():
    value = os.environ.get("KUBECONFIG", "")
    first = next((p for p in value.split(os.pathsep) if p), None)
    return first or os.path.join(os.environ.get("HOME", "."), ".kube", "config")


def read_kubeconfig(path, reply):
    """The document, an empty one for a missing or empty file, None when it cannot be read."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return {"apiVersion": "v1", "kind": "Config", "clusters": [], "contexts": [], "users": []}
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml  # optional: only to merge into a YAML kubeconfig
    except ImportError:
        reply.stderr(
            "fake: cannot merge into the YAML kubeconfig %s without PyYAML; write it as JSON\n" % path
        )
        return None
    return yaml.safe_load(text) or {}


def upsert(doc, key, entry):
    entries = [e for e in (doc.get(key) or []) if e.get("name") != entry["name"]]
    entries.append(entry)
    doc[key] = entries


def write_kubeconfig(state, reply, context):
    path = kubeconfig_path()
    doc = read_kubeconfig(path, reply)
    if doc is None:
        return False
    server = state.get("kubeconfig_server") or "https://127.0.0.1:6443"
    token = state.get("kubeconfig_token")
    cluster = {"server": server}
    if state.get("kubeconfig_certificate_authority"):
        cluster["certificate-authority"] = state["kubeconfig_certificate_authority"]
    user = {"token": token} if token else {}
    if state.get("kubeconfig_client_certificate"):
        user["client-certificate"], user["client-key"] = state["kubeconfig_client_certificate"]
    upsert(doc, "clusters", {"name": context, "cluster": cluster})
    upsert(doc, "users", {"name": context, "user": user})
    upsert(doc, "contexts", {"name": context, "context": {"cluster": context, "user": context}})
    doc["current-context"] = context
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    return True


def remove_kubeconfig_context(context):
    path = kubeconfig_path()
    if not os.path.exists(path):
        return
    doc = read_kubeconfig(path, Reply())
    if not doc:
        return
    for key in ("clusters", "users", "contexts"):
        doc[key] = [e for e in (doc.get(key) or []) if e.get("name") != context]
    if doc.get("current-context") == context:
        doc["current-context"] = ""
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)


# -------------------------------------------------------------------------------------- docker


def docker(args, state, stdin, reply):
    if args[:1] == ["info"]:
        reply.stdout("Client:\n Version: 27.5.1\n\nServer:\n Server Version: 27.5.1\n")
        return 0
    if args[:1] == ["inspect"]:
        return docker_inspect([a for a in args[1:] if not a.startswith("-")], state, reply)
    if args[:1] == ["run"]:
        return docker_run(args[1:], state, reply)
    if args[:1] == ["start"]:
        return for_each_container(args[1:], state, reply, start_container)
    if args[:1] == ["stop"]:
        return for_each_container(args[1:], state, reply, stop_container)
    if args[:1] == ["rm"]:
        return docker_rm(args[1:], state, reply)
    if args[:2] == ["network", "connect"]:
        return docker_network_connect(args[2:], state, reply)
    if args[:2] == ["network", "disconnect"]:
        return docker_network_disconnect(args[2:], state, reply)
    if args[:2] == ["network", "create"]:
        return docker_network_create(args[2:], state, reply)
    if args[:2] == ["network", "inspect"]:
        return docker_network_inspect(args[2:], state, reply)
    if args[:2] == ["network", "rm"]:
        return docker_network_rm(args[2:], state, reply)
    if args[:1] == ["exec"]:
        return docker_exec(args[1:], state, stdin, reply)
    return unsupported(["docker"] + args, reply)


def no_such_container(name, reply):
    reply.stderr("Error response from daemon: No such container: %s\n" % name)
    return 1


def inspected(name, c):
    bindings = {}
    for port in c.get("ports", []):
        bindings.setdefault("%d/tcp" % port["container_port"], []).append(
            {"HostIp": port.get("host_ip", ""), "HostPort": str(port["host_port"])}
        )
    return {
        "Id": container_id(name),
        "Name": "/" + name,
        "State": {"Status": "running" if c["running"] else "exited", "Running": c["running"]},
        "Config": {"Image": c.get("image", ""), "Labels": c.get("labels") or {}},
        "HostConfig": {
            "PortBindings": bindings,
            "RestartPolicy": {"Name": c.get("restart") or "no"},
        },
        "NetworkSettings": {
            "Networks": {n: {} for n in c.get("networks", [])},
            "Ports": bindings if c["running"] else {},
        },
    }


def docker_inspect(names, state, reply):
    found = []
    for name in names:
        c = state["containers"].get(name)
        if c is None:
            reply.stderr("Error: No such object: %s\n" % name)
        else:
            found.append(inspected(name, c))
    reply.stdout(json.dumps(found, indent=4) + "\n")
    return 0 if len(found) == len(names) else 1


def parse_publish(spec):
    """`127.0.0.1:5050:5000`, `[::1]:5050:5000`, `5050:5000` or `5000`."""
    if spec.startswith("["):
        end = spec.index("]")
        ip, rest = spec[1:end], spec[end + 2 :]
        host_port, container_port = rest.split(":")
    else:
        parts = spec.split(":")
        if len(parts) == 3:
            ip, host_port, container_port = parts
        elif len(parts) == 2:
            ip, (host_port, container_port) = "", parts
        else:
            ip, host_port, container_port = "", "0", parts[0]
    return {
        "host_ip": ip,
        "host_port": int(host_port or 0),
        "container_port": int(container_port.split("/")[0]),
    }


def docker_run(args, state, reply):
    with_value = {"--name", "--restart", "-p", "--publish", "--label", "-l", "--network", "--net", "-e", "--env", "-v", "--volume"}
    flags = {"-d", "--detach", "--rm"}
    name, labels, ports, networks, restart, image = None, {}, [], [], None, None
    i = 0
    while i < len(args):
        arg = args[i]
        key, value = arg, None
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
        if key in flags:
            i += 1
            continue
        if key in with_value:
            if value is None:
                value = args[i + 1]
                i += 1
            i += 1
            if key == "--name":
                name = value
            elif key == "--restart":
                restart = value
            elif key in ("-p", "--publish"):
                ports.append(parse_publish(value))
            elif key in ("--label", "-l"):
                k, _, v = value.partition("=")
                labels[k] = v
            elif key in ("--network", "--net"):
                networks.append(value)
            continue
        if arg.startswith("-"):
            return unsupported(["docker", "run"] + args, reply)
        image = arg
        break
    if image is None:
        reply.stderr('docker: "docker run" requires at least 1 argument.\n')
        return 125
    name = name or "container-%d" % (len(state["containers"]) + 1)
    if name in state["containers"]:
        reply.stderr(
            'docker: Error response from daemon: Conflict. The container name "/%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.\n'
            % (name, container_id(name))
        )
        return 125
    for other_name, other in state["containers"].items():
        for taken in other.get("ports", []):
            for port in ports:
                if other["running"] and taken["host_port"] == port["host_port"] and port["host_port"]:
                    reply.stderr(
                        "docker: Error response from daemon: driver failed programming external connectivity on endpoint %s: Bind for %s:%d failed: port is already allocated.\n"
                        % (name, port["host_ip"] or "0.0.0.0", port["host_port"])
                    )
                    return 125
    container = {
        "image": image,
        "running": True,
        "labels": labels,
        "ports": ports,
        "networks": networks or ["bridge"],
        "restart": restart,
        "files": {},
    }
    state["containers"][name] = container
    maybe_start_registry(state, name, container)
    reply.stdout(container_id(name) + "\n")
    return 0


def for_each_container(names, state, reply, action):
    code = 0
    for name in [n for n in names if not n.startswith("-")]:
        c = state["containers"].get(name)
        if c is None:
            code = no_such_container(name, reply)
            continue
        action(state, name, c)
        reply.stdout(name + "\n")
    return code


def start_container(state, name, c):
    if not c["running"]:
        c["running"] = True
        maybe_start_registry(state, name, c)


def stop_container(state, name, c):
    c["running"] = False
    stop_registry(c)


def docker_rm(args, state, reply):
    force = any(a in ("-f", "--force") or (a.startswith("-") and not a.startswith("--") and "f" in a) for a in args)
    code = 0
    for name in [a for a in args if not a.startswith("-")]:
        c = state["containers"].get(name)
        if c is None:
            if not force:
                code = no_such_container(name, reply)
            continue
        if c["running"] and not force:
            reply.stderr(
                "Error response from daemon: cannot remove container \"/%s\": container is running: stop the container before removing or force remove\n"
                % name
            )
            code = 1
            continue
        stop_registry(c)
        del state["containers"][name]
        reply.stdout(name + "\n")
    return code


def docker_network_connect(args, state, reply):
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 2:
        return unsupported(["docker", "network", "connect"] + args, reply)
    network, name = names
    if network not in state["networks"]:
        reply.stderr("Error response from daemon: network %s not found\n" % network)
        return 1
    c = state["containers"].get(name)
    if c is None:
        return no_such_container(name, reply)
    if network in c["networks"]:
        reply.stderr(
            "Error response from daemon: endpoint with name %s already exists in network %s\n"
            % (name, network)
        )
        return 1
    c["networks"].append(network)
    return 0


def network_members(state, network):
    return sorted(n for n, c in state["containers"].items() if network in c.get("networks", []))


def remove_network(state, network):
    if network in state["networks"]:
        state["networks"].remove(network)
    state["network_labels"].pop(network, None)


def no_such_network(network, reply):
    reply.stderr("Error response from daemon: network %s not found\n" % network)
    return 1


def one_network(verb, args, reply):
    """The one network name of `docker network <verb>`, or None after an unsupported reply."""
    names = positionals(args)
    if len(names) != 1:
        unsupported(["docker", "network", verb] + args, reply)
        return None
    return names[0]


def docker_network_create(args, state, reply):
    network = one_network("create", args, reply)
    if network is None:
        return 2
    if network in state["networks"]:
        reply.stderr("Error response from daemon: network with name %s already exists\n" % network)
        return 1
    labels = {}
    for i, arg in enumerate(args):
        if arg == "--label" and i + 1 < len(args):
            k, _, v = args[i + 1].partition("=")
            labels[k] = v
    state["networks"].append(network)
    state["network_labels"][network] = labels
    reply.stdout(container_id("network/" + network) + "\n")
    return 0


def docker_network_inspect(args, state, reply):
    network = one_network("inspect", args, reply)
    if network is None:
        return 2
    if network not in state["networks"]:
        reply.stdout("[]\n")
        return no_such_network(network, reply)
    found = {
        "Name": network,
        "Id": container_id("network/" + network),
        "Labels": state["network_labels"].get(network, {}),
        "Containers": {container_id(n): {"Name": n} for n in network_members(state, network)},
    }
    reply.stdout(json.dumps([found], indent=4) + "\n")
    return 0


def docker_network_disconnect(args, state, reply):
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 2:
        return unsupported(["docker", "network", "disconnect"] + args, reply)
    network, name = names
    if network not in state["networks"]:
        return no_such_network(network, reply)
    c = state["containers"].get(name)
    if c is None:
        return no_such_container(name, reply)
    if network not in c["networks"]:
        reply.stderr(
            "Error response from daemon: container %s is not connected to network %s\n"
            % (container_id(name), network)
        )
        return 1
    c["networks"].remove(network)
    return 0


def docker_network_rm(args, state, reply):
    code = 0
    for network in positionals(args):
        if network not in state["networks"]:
            code = no_such_network(network, reply)
            continue
        if network_members(state, network):
            reply.stderr(
                "Error response from daemon: error while removing network: network %s id %s has active endpoints\n"
                % (network, container_id("network/" + network))
            )
            code = 1
            continue
        remove_network(state, network)
        reply.stdout(network + "\n")
    return code


def docker_exec(args, state, stdin, reply):
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 1
    if i >= len(args):
        return unsupported(["docker", "exec"] + args, reply)
    name, command = args[i], args[i + 1 :]
    c = state["containers"].get(name)
    if c is None:
        return no_such_container(name, reply)
    if not c["running"]:
        reply.stderr("Error response from daemon: container %s is not running\n" % container_id(name))
        return 1
    files = c.setdefault("files", {})
    if command[:1] == ["cat"] and len(command) == 2:
        path = command[1]
        if path not in files:
            reply.stderr("cat: %s: No such file or directory\n" % path)
            return 1
        reply.stdout(files[path])
        return 0
    if command[:2] == ["sh", "-c"] and len(command) == 3:
        words = shlex.split(command[2])
        for j, word in enumerate(words[:-2]):
            if word == "cat" and words[j + 1] == ">":
                files[words[j + 2]] = stdin or ""
                return 0
    return unsupported(["docker", "exec"] + args, reply)


# ------------------------------------------------------------------ optional real registries


def maybe_start_registry(state, name, c):
    """With `start_registry` in the state, a `registry:*` container is backed by a real
    `docker-registry` process on its published loopback port."""
    if not state.get("start_registry") or not c["image"].startswith("registry:"):
        return
    binary = shutil.which(state.get("registry_binary") or "docker-registry")
    port = next((p for p in c["ports"] if p["container_port"] == 5000), None)
    if binary is None or port is None:
        return
    ip = port["host_ip"] or "127.0.0.1"
    addr = "[%s]:%d" % (ip, port["host_port"]) if ":" in ip else "%s:%d" % (ip, port["host_port"])
    root = os.path.join(os.path.dirname(STATE), "registries", name)
    os.makedirs(root, exist_ok=True)
    config = os.path.join(root, "config.yml")
    with open(config, "w") as f:
        f.write(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n"
            "  delete:\n    enabled: true\nhttp:\n  addr: %s\n" % (os.path.join(root, "data"), addr)
        )
    log = open(os.path.join(root, "registry.log"), "ab")
    process = subprocess.Popen(
        [binary, "serve", config],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    c["pid"] = process.pid


def stop_registry(c):
    pid = c.pop("pid", None)
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    main()
