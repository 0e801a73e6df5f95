"""Where an SSH device really is and whether we trust its host key.

Kept apart from the transport so the trust rules read in one place: known_hosts is the
only source of trust; ``strict`` refuses an unknown key, ``accept-new`` records it (an
explicit opt-in, never paramiko's silent ``AutoAddPolicy``), and a *changed* key is always
refused because that is exactly what a man-in-the-middle looks like.
"""

from __future__ import annotations

import getpass
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from harness.errors import AuthError

DEFAULT_SSH_CONFIG = "~/.ssh/config"


@dataclass(frozen=True)
class Endpoint:
    """Host, port, user and identity files after ``~/.ssh/config`` alias lookup."""

    alias: str
    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]


def resolve_endpoint(host: str, port: int | None, user: str | None, key_file: str | None,
                     ssh_config: str | None = DEFAULT_SSH_CONFIG) -> Endpoint:
    """Fill what the inventory left unset (None) from the ssh config entry for ``host``.

    Explicit settings win; the config always supplies ``HostName`` so an alias works.
    paramiko returns ``Port`` as a string, hence the ``int()``.
    """
    found: dict[str, Any] = {}
    cfg_path = Path(ssh_config).expanduser() if ssh_config else None
    if cfg_path is not None and cfg_path.is_file():
        found = dict(paramiko.SSHConfig.from_path(str(cfg_path)).lookup(host))
    hostname = str(found.get("hostname") or host)
    cfg_keys = tuple(os.path.expanduser(str(k)) for k in found.get("identityfile") or ())
    return Endpoint(
        alias=host,
        hostname=hostname,
        port=port if port is not None else int(str(found.get("port") or 22)),
        user=user or str(found.get("user") or getpass.getuser()),
        key_files=(os.path.expanduser(key_file),) if key_file else cfg_keys,
    )


def known_hosts_name(hostname: str, port: int) -> str:
    """The name OpenSSH (and paramiko) file a host key under: ``[host]:port`` off port 22."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


class StrictPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse a key known_hosts does not have, saying how to accept it."""

    def __init__(self, known_hosts: Path, port: int):
        self.known_hosts = known_hosts
        self.port = port

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        host = hostname.split("]")[0].lstrip("[")
        raise AuthError(
            f"unknown host key for {hostname} ({key.get_name()} {key.fingerprint}); it is not in {self.known_hosts}. "
            f"Check the fingerprint, then either run `ssh-keyscan -p {self.port} {shlex.quote(host)} >> "
            f"{shlex.quote(str(self.known_hosts))}` or set `host_key_policy: accept-new` for this device"
        )


class AcceptNewPolicy(paramiko.MissingHostKeyPolicy):
    """Record an unknown key in known_hosts (appending, so existing lines stay as written)."""

    def __init__(self, known_hosts: Path):
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with open(self.known_hosts, "a", encoding="ascii") as f:
            f.write(line)
        client.get_host_keys().add(hostname, key.get_name(), key)


def changed_key_error(e: paramiko.BadHostKeyException, known_hosts: Path, hostname: str, port: int) -> AuthError:
    """A changed key is never accepted automatically, whatever the policy says."""
    name = known_hosts_name(hostname, port)
    return AuthError(
        f"HOST KEY CHANGED for {name}: it presents {e.key.get_name()} {e.key.fingerprint}, but {known_hosts} "
        f"records {e.expected_key.fingerprint}. This may be a reinstalled board or an attack. If the change is "
        f"expected, remove the old key with `ssh-keygen -f {shlex.quote(str(known_hosts))} -R "
        f"{shlex.quote(name)}` and connect again"
    )
