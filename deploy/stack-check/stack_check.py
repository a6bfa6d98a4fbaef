#!/usr/bin/env python3
"""``make stack-check``: boot the project's own compose.yml for real and use it as an operator.

What it does, in order (each step is timed and the times are printed at the end):

1. installs what this machine lacks: Debian's ``docker.io`` engine and ``debootstrap``, and,
   when ``docker compose`` is missing or older than Compose v2, the next Debian release's
   ``docker-compose`` package (v2.26), unpacked into a cache folder as a CLI plugin;
2. starts a Docker engine of its own (own socket, data root, bridge; ports published on
   127.0.0.1 only) and stops it at the end, removing its bridge and iptables chains;
3. builds the images compose.yml names from Debian, since public registries are out of
   reach here: a ``debootstrap --variant=minbase`` root file system (cached), a Python base
   for the Dockerfile's ``BASE_IMAGE`` build argument, and local stand-ins tagged with the
   names compose.yml uses (PostgreSQL, Redis and Caddy from Debian, a small mail catcher with
   a Mailpit-like listing); every image trusts this machine's extra CA certificates;
4. in a fresh copy of the project, writes ``.env`` from ``.env.example`` as the README's
   operations section says (host name, URLs, generated secrets), then runs
   ``docker compose build`` and ``docker compose up -d`` and waits for every service to be
   healthy;
5. posts the sample invitation to the scheduling callback through Caddy over https (Caddy's
   own CA verified), finds the email in the mail catcher, opens the admin's login page and
   gets its CSS;
6. ``docker compose down -v``.

The engine's data root stays in /var/lib/convoke-stack-check (images are reused by the next
run); ``--purge`` removes it and the caches. Must run as root (it re-runs itself with sudo).
Standard library only: it runs with the system's python3.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT_DIR = HERE.parent.parent
STATE_DIR = Path("/var/lib/convoke-stack-check")
CACHE_DIR = Path("/var/cache/convoke-stack-check")
RUN_DIR = Path("/run/convoke-stack-check")
SOCKET = RUN_DIR / "docker.sock"
PIDFILE = RUN_DIR / "docker.pid"

DEBIAN_SUITE = "trixie"  # its Python (3.13) fits the project's requires-python
DEBIAN_MIRROR = "http://deb.debian.org/debian"
ROOTFS_TARBALL = CACHE_DIR / f"debian-{DEBIAN_SUITE}-minbase.tar"
COMPOSE_PACKAGE_SUITE = "trixie"  # bookworm packages Compose v1 only
BRIDGE = "convoke-sc0"
BRIDGE_ADDRESS = "10.213.0.1/24"
ADDRESS_POOL = "base=10.214.0.0/16,size=24"
PROJECT = "convoke-stack-check"
HOST = "localhost"
PUBLISHED_PORTS = (80, 443, 8025)

ROOTFS_IMAGE = f"convoke-stack-check/rootfs:{DEBIAN_SUITE}"
DEBIAN_IMAGE = f"convoke-stack-check/debian:{DEBIAN_SUITE}"
PYTHON_IMAGE = f"convoke-stack-check/python:{DEBIAN_SUITE}"
# compose.yml's third-party images -> the stand-in built for each here.
STAND_INS = {
    "postgres:16": "postgres",
    "redis:7": "redis",
    "caddy:2": "caddy",
    "axllent/mailpit:latest": "mailpit",
}
OWN_IMAGE = "convoke:latest"

HEALTHY_TIMEOUT = 420
MAIL_TIMEOUT = 90
ENGINE_TIMEOUT = 60

ORGANIZER = "alice@example.org"
ATTENDEE = "bob@example.net"


class CheckFailed(Exception):
    """A step of the check failed; the message says which and why."""


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = False,
    check: bool = True,
    timeout: float = 1800,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command,
        env=env,
        cwd=cwd,
        text=True,
        capture_output=capture,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-3000:] if capture else ""
        raise CheckFailed(f"{' '.join(command[:4])} ... exited {result.returncode}\n{detail}")
    return result


# --- Host packages ----------------------------------------------------------------------------


def apt_install(packages: list[str]) -> None:
    if not packages:
        return
    log(f"apt-get install {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env, capture=True)
    run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        env=env,
        capture=True,
    )


def ensure_host_packages() -> None:
    wanted = {
        "dockerd": "docker.io",
        "debootstrap": "debootstrap",
        "iptables": "iptables",
        "ip": "iproute2",
    }
    apt_install(sorted({pkg for cmd, pkg in wanted.items() if shutil.which(cmd) is None}))


def docker_env() -> dict[str, str]:
    return {
        **os.environ,
        "DOCKER_HOST": f"unix://{SOCKET}",
        "DOCKER_CONFIG": str(CACHE_DIR / "docker-config"),
        "COMPOSE_PROJECT_NAME": PROJECT,
        "COMPOSE_ANSI": "never",
        # The legacy builder: Debian's engine has no buildx plugin to hand BuildKit sessions.
        "DOCKER_BUILDKIT": "0",
        "COMPOSE_DOCKER_CLI_BUILD": "1",
    }


def compose_version(env: dict[str, str]) -> tuple[int, ...] | None:
    result = run(["docker", "compose", "version", "--short"], env=env, capture=True, check=False)
    match = re.match(r"v?(\d+)\.(\d+)", result.stdout.strip())
    return tuple(int(part) for part in match.groups()) if match else None


def ensure_compose() -> None:
    """Compose v2 as a CLI plugin: the machine's own, or the next Debian release's package
    unpacked into the cache (bookworm packages only Compose v1)."""
    config = CACHE_DIR / "docker-config"
    plugins = CACHE_DIR / "cli-plugins"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.json").write_text(json.dumps({"cliPluginsExtraDirs": [str(plugins)]}))
    env = docker_env()
    version = compose_version(env)
    if version and version >= (2, 0):
        return
    log(f"docker compose v2: the {COMPOSE_PACKAGE_SUITE} docker-compose package")
    apt_dir = CACHE_DIR / "apt"
    (apt_dir / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt_dir / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    sources = apt_dir / "sources.list"
    sources.write_text(
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        f"{DEBIAN_MIRROR} {COMPOSE_PACKAGE_SUITE} main\n"
    )
    options = [
        f"-oDir::Etc::SourceList={sources}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={apt_dir / 'lists'}",
        f"-oDir::Cache={apt_dir}",
        "-oAPT::Sandbox::User=root",
    ]
    run(["apt-get", *options, "update", "-qq"], capture=True)
    run(["apt-get", *options, "download", "docker-compose"], cwd=apt_dir, capture=True)
    package = sorted(apt_dir.glob("docker-compose_2*.deb"))[-1]
    unpacked = apt_dir / "unpacked"
    shutil.rmtree(unpacked, ignore_errors=True)
    run(["dpkg-deb", "-x", str(package), str(unpacked)])
    plugins.mkdir(parents=True, exist_ok=True)
    shutil.copy2(unpacked / "usr/libexec/docker/cli-plugins/docker-compose", plugins)
    version = compose_version(env)
    if not version or version < (2, 0):
        raise CheckFailed("docker compose v2 is still not available")


# --- The engine -------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it when it is our child and has exited
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _our_engine_pid() -> int | None:
    try:
        pid = int(PIDFILE.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def foreign_engines() -> list[int]:
    ours = _our_engine_pid()
    found = run(["pgrep", "-x", "dockerd"], capture=True, check=False).stdout.split()
    return [int(pid) for pid in found if int(pid) != ours]


def ports_in_use() -> list[int]:
    busy = []
    for port in PUBLISHED_PORTS:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


def start_engine(log_file: Path) -> subprocess.Popen[bytes]:
    stop_engine()  # a previous run that was killed
    if foreign := foreign_engines():
        raise CheckFailed(
            f"another Docker engine runs here (pid {', '.join(map(str, foreign))}); the check "
            "starts and removes its own, with its own bridge and iptables chains: stop that one"
        )
    if busy := ports_in_use():
        raise CheckFailed(f"ports {busy} on 127.0.0.1 are taken; compose.yml publishes them")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (STATE_DIR / "docker").mkdir(parents=True, exist_ok=True)
    run(["ip", "link", "add", BRIDGE, "type", "bridge"], capture=True)
    run(["ip", "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE], capture=True)
    run(["ip", "link", "set", BRIDGE, "up"], capture=True)
    engine = subprocess.Popen(
        [
            "dockerd",
            f"--host=unix://{SOCKET}",
            f"--pidfile={PIDFILE}",
            f"--exec-root={RUN_DIR / 'exec'}",
            f"--data-root={STATE_DIR / 'docker'}",
            f"--bridge={BRIDGE}",
            f"--default-address-pool={ADDRESS_POOL}",
            # Ports compose.yml publishes without an address land on loopback only.
            "--ip=127.0.0.1",
            "--log-level=warn",
        ],
        stdout=log_file.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + ENGINE_TIMEOUT
    while time.monotonic() < deadline:
        if engine.poll() is not None:
            raise CheckFailed(f"dockerd exited with {engine.returncode}: {log_file.read_text()}")
        if run(["docker", "info"], env=docker_env(), capture=True, check=False).returncode == 0:
            return engine
        time.sleep(0.5)
    raise CheckFailed(f"dockerd did not answer within {ENGINE_TIMEOUT} s")


def stop_engine() -> None:
    """Stop our engine (if any), then remove its bridges and iptables chains."""
    pid = _our_engine_pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.3)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    PIDFILE.unlink(missing_ok=True)
    if foreign_engines():
        return  # leave the bridges and chains of an engine that is not ours
    links = run(["ip", "-o", "link", "show", "type", "bridge"], capture=True, check=False).stdout
    for name in re.findall(r"^\d+: ([^:@]+)", links, re.M):
        if name == BRIDGE or name.startswith("br-") or name == "docker0":
            run(["ip", "link", "delete", name], capture=True, check=False)
    remove_iptables_chains()


def remove_iptables_chains() -> None:
    for table in ("filter", "nat"):
        saved = run(["iptables-save", "-t", table], capture=True, check=False).stdout
        chains = set(re.findall(r"^:(DOCKER[\w-]*) ", saved, re.M))
        for line in saved.splitlines():
            if line.startswith("-A ") and ("DOCKER" in line or BRIDGE in line):
                rule = line[3:].split()
                if rule[0] in chains:
                    continue  # goes with its chain
                run(["iptables", "-t", table, "-D", *rule], capture=True, check=False)
        for chain in chains:
            run(["iptables", "-t", table, "-F", chain], capture=True, check=False)
        for chain in chains:
            run(["iptables", "-t", table, "-X", chain], capture=True, check=False)


# --- Images -------------------------------------------------------------------------------------


def image_exists(name: str) -> bool:
    result = run(["docker", "image", "inspect", name], env=docker_env(), capture=True, check=False)
    return result.returncode == 0


def ensure_rootfs() -> None:
    if not ROOTFS_TARBALL.is_file():
        log(f"debootstrap --variant=minbase {DEBIAN_SUITE} (cached in {CACHE_DIR})")
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="rootfs-", dir=CACHE_DIR) as scratch:
            target = Path(scratch) / "rootfs"
            run(
                ["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(target), DEBIAN_MIRROR],
                capture=True,
            )
            partial = ROOTFS_TARBALL.with_suffix(".partial")
            run(["tar", "--numeric-owner", "-C", str(target), "-cf", str(partial), "."])
            partial.rename(ROOTFS_TARBALL)
    if not image_exists(ROOTFS_IMAGE):
        log(f"docker import {ROOTFS_TARBALL.name}")
        run(["docker", "import", str(ROOTFS_TARBALL), ROOTFS_IMAGE], env=docker_env(), capture=True)


def build(tag: str, context: Path, **build_args: str) -> None:
    command = ["docker", "build", "-q", "-t", tag]
    for name, value in build_args.items():
        command += ["--build-arg", f"{name}={value}"]
    run([*command, str(context)], env=docker_env(), capture=True)


def build_base_images(scratch: Path) -> None:
    context = scratch / "debian"
    shutil.copytree(HERE / "images" / "debian", context)
    certificates = context / "certs"
    certificates.mkdir()
    for certificate in Path("/usr/local/share/ca-certificates").glob("**/*.crt"):
        shutil.copy2(certificate, certificates / certificate.name)
    log("build the Debian base (trusting this machine's extra CA certificates) and Python")
    build(DEBIAN_IMAGE, context, ROOTFS_IMAGE=ROOTFS_IMAGE)
    build(PYTHON_IMAGE, HERE / "images" / "python", DEBIAN_IMAGE=DEBIAN_IMAGE)


def build_stand_ins() -> None:
    named = set(re.findall(r"^\s*image:\s*(\S+)", (PROJECT_DIR / "compose.yml").read_text(), re.M))
    unknown = named - set(STAND_INS) - {OWN_IMAGE}
    if unknown:
        raise CheckFailed(f"compose.yml names images with no stand-in here: {sorted(unknown)}")
    for image, folder in STAND_INS.items():
        if image in named:
            log(f"stand-in for {image}")
            build(image, HERE / "images" / folder, DEBIAN_IMAGE=DEBIAN_IMAGE)


# --- The stack ----------------------------------------------------------------------------------


def project_copy(target: Path) -> Path:
    """A fresh copy of the project as git sees it (committed and new files, not ignored)."""
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        capture=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = PROJECT_DIR / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    return target


def write_env(checkout: Path) -> dict[str, str]:
    """``cp .env.example .env`` and the README's step 2: host, URLs and three secrets."""
    values = {
        "CONVOKE_HOST": HOST,
        "APP_URL": f"https://{HOST}",
        "ALLOWED_HOSTS": f"{HOST},web",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "CALDAV_INBOUND_API_KEY": secrets.token_urlsafe(48),
        "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    lines = (checkout / ".env.example").read_text().splitlines()
    pending = dict(values)
    for index, line in enumerate(lines):
        name = line.partition("=")[0].strip()
        if name in pending and not line.lstrip().startswith("#"):
            lines[index] = f"{name}={pending.pop(name)}"
    lines += [f"{name}={value}" for name, value in pending.items()]
    env_file = checkout / ".env"
    env_file.write_text("\n".join(lines) + "\n")
    env_file.chmod(0o600)
    return values


def compose(checkout: Path, *args: str, capture: bool = True, check: bool = True) -> str:
    return (
        run(
            ["docker", "compose", *args],
            env=docker_env(),
            cwd=checkout,
            capture=capture,
            check=check,
        ).stdout
        or ""
    )


def service_states(checkout: Path) -> dict[str, dict[str, object]]:
    output = compose(checkout, "ps", "--all", "--format", "json")
    text = output.strip()
    rows = (
        json.loads(text) if text.startswith("[") else [json.loads(row) for row in text.splitlines()]
    )
    return {row["Service"]: row for row in rows}


def wait_healthy(checkout: Path, services: set[str]) -> None:
    deadline = time.monotonic() + HEALTHY_TIMEOUT
    waiting: list[str] = sorted(services)
    while time.monotonic() < deadline:
        states = service_states(checkout)
        waiting = []
        for name in sorted(services):
            state = states.get(name, {})
            if name == "migrate":
                if state.get("State") == "exited":
                    if state.get("ExitCode") != 0:
                        raise CheckFailed(f"migrate exited with {state.get('ExitCode')}")
                    continue
            elif state.get("State") == "running" and state.get("Health") == "healthy":
                continue
            elif state.get("State") in ("exited", "dead") or state.get("Health") == "unhealthy":
                raise CheckFailed(f"{name} is {state.get('State')}/{state.get('Health')}")
            waiting.append(name)
        if not waiting:
            return
        time.sleep(2)
    raise CheckFailed(f"not healthy after {HEALTHY_TIMEOUT} s: {', '.join(waiting)}")


def compose_services(checkout: Path) -> set[str]:
    return set(compose(checkout, "config", "--services").split())


# --- Using it as an operator ----------------------------------------------------------------


class Https:
    """HTTPS to Caddy on 127.0.0.1:443 for HOST, verified against Caddy's own CA."""

    def __init__(self, root_certificate: Path) -> None:
        self.context = ssl.create_default_context(cafile=str(root_certificate))

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPSConnection(HOST, 443, context=self.context, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


def exercise(checkout: Path, env_values: dict[str, str]) -> None:
    root = checkout.parent / "caddy-root.crt"
    root.write_text(
        compose(
            checkout, "exec", "-T", "caddy", "cat", "/data/caddy/pki/authorities/local/root.crt"
        )
    )
    https = Https(root)

    status, _, body = https.request("GET", "/healthz")
    health = json.loads(body)
    if status != 200 or health.get("broker") != "ok":
        raise CheckFailed(f"https://{HOST}/healthz answered {status}: {body[:300]!r}")
    log(f"https://{HOST}/healthz through Caddy: {health}")

    invitation = (checkout / "samples" / "invitation.ics").read_bytes()
    status, _, body = https.request(
        "POST",
        "/api/v1.0/caldav-scheduling-callback/",
        body=invitation,
        headers={
            "Content-Type": "text/calendar",
            "X-LS-Api-Key": env_values["CALDAV_INBOUND_API_KEY"],
            "X-LS-Sender": f"mailto:{ORGANIZER}",
            "X-LS-Recipient": f"mailto:{ATTENDEE}",
            "X-LS-Method": "REQUEST",
            "X-LS-Is-Mailbox": "false",
        },
    )
    if status != 202:
        raise CheckFailed(f"the callback through Caddy answered {status}: {body[:300]!r}")
    log("callback posted through Caddy over https: 202")

    found = wait_for_mail(ATTENDEE)
    log(f"email in the mail catcher: {found['Subject']!r} to {ATTENDEE}")

    status, _, page = https.request("GET", "/admin/login/")
    stylesheets = re.findall(rb'href="(/static/[^"]+\.css)"', page)
    if status != 200 or not stylesheets:
        raise CheckFailed(f"/admin/login/ answered {status} with no stylesheet")
    for href in stylesheets:
        status, headers, css = https.request("GET", href.decode())
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if status != 200 or not content_type.startswith("text/css") or not css:
            raise CheckFailed(f"{href.decode()} answered {status} {content_type}")
    log(f"admin login page and its {len(stylesheets)} stylesheet(s): 200 text/css")


def wait_for_mail(recipient: str) -> dict[str, object]:
    deadline = time.monotonic() + MAIL_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8025/api/v1/messages", timeout=10) as r:
                listing = json.load(r)
        except OSError:
            listing = {"messages": []}
        for message in listing["messages"]:
            if any(to.get("Address") == recipient for to in message.get("To", [])):
                detail_url = f"http://127.0.0.1:8025/api/v1/message/{message['ID']}"
                with urllib.request.urlopen(detail_url, timeout=10) as r:
                    detail = json.load(r)
                if not any(
                    a.get("ContentType") == "text/calendar" for a in detail.get("Attachments", [])
                ):
                    raise CheckFailed("the invitation email has no text/calendar attachment")
                return message
        time.sleep(1)
    raise CheckFailed(f"no email to {recipient} in the mail catcher after {MAIL_TIMEOUT} s")


# --- Driver -------------------------------------------------------------------------------------


class Timer:
    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self.started = time.monotonic()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        begun = time.monotonic()
        try:
            yield
        finally:
            self.steps.append((name, time.monotonic() - begun))

    def report(self, outcome: str) -> None:
        print(f"\nstack check {outcome} in {time.monotonic() - self.started:.0f} s:")
        for name, seconds in self.steps:
            print(f"  {seconds:6.1f} s  {name}")


def show_failure(checkout: Path) -> None:
    print("\n--- docker compose ps ---", flush=True)
    compose(checkout, "ps", "--all", capture=False, check=False)
    print("--- last log lines of every service ---", flush=True)
    compose(checkout, "logs", "--no-color", "--tail=40", capture=False, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purge", action="store_true", help="remove cached images and files")
    options = parser.parse_args()
    if os.geteuid() != 0:
        os.execvp("sudo", ["sudo", "-E", sys.executable, *sys.argv])  # noqa: S606
    if options.purge:
        stop_engine()
        shutil.rmtree(STATE_DIR, ignore_errors=True)
        shutil.rmtree(CACHE_DIR, ignore_errors=True)
        return 0

    timer = Timer()
    scratch = Path(tempfile.mkdtemp(prefix="convoke-stack-check."))
    checkout = scratch / "convoke"
    forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    outcome = "FAILED"
    started = False
    try:
        with timer.step("host packages and Compose"):
            ensure_host_packages()
            ensure_compose()
        with timer.step("engine start"):
            start_engine(scratch / "dockerd.log")
            started = True
        with timer.step("base images (debootstrap, Debian, Python)"):
            ensure_rootfs()
            build_base_images(scratch)
        with timer.step("stand-ins for compose.yml's images"):
            build_stand_ins()
        with timer.step("docker compose build"):
            project_copy(checkout)
            env_values = write_env(checkout)
            log("docker compose build")
            compose(checkout, "build", "--build-arg", f"BASE_IMAGE={PYTHON_IMAGE}")
        with timer.step("docker compose up until every service is healthy"):
            log("docker compose up -d")
            compose(checkout, "up", "-d")
            wait_healthy(checkout, compose_services(checkout))
            log("every service is healthy")
        with timer.step("callback, email, admin"):
            exercise(checkout, env_values)
        outcome = "passed"
    except CheckFailed as failure:
        print(f"\nstack check failed: {failure}", file=sys.stderr, flush=True)
        if started and checkout.is_dir():
            show_failure(checkout)
    finally:
        with timer.step("docker compose down -v"):
            if started and checkout.is_dir():
                compose(checkout, "down", "-v", "--remove-orphans", capture=True, check=False)
        with timer.step("engine stop, bridge and iptables clean-up"):
            stop_engine()
            Path("/proc/sys/net/ipv4/ip_forward").write_text(forwarding)
            shutil.rmtree(scratch, ignore_errors=True)
        timer.report(outcome)
    return 0 if outcome == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
