"""The SSH test bed's guest side: Debian's armhf dropbear and kexec in the initramfs, its host key made on the host
and pinned, and the harness's client key authorized.

The keys live under the cache (`<cache>/testbed/`), made once per cache, like the dropbear bundle that
images/setup-host.sh unpacks there: the host key (dropbear's own format for the guest, its public half
as a known_hosts line under HOST_KEY_ALIAS: that is the pin images/boards/qemu-ssh.yaml names), and the
client key (OpenSSH format for paramiko; its public half is root's authorized_keys in the guest).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.core.errors import InfraError
from harness.core.paths import cache_root

HOST_KEY_ALIAS = "cma-harness-testbed"
# The armhf libraries dropbear loads (readelf -d, transitively); the set-up script copies them flat.
DROPBEAR_LIBS = ("libc.so.6", "libcrypt.so.1", "libtomcrypt.so.1", "libtommath.so.1", "libgmp.so.10", "libz.so.1")
GUEST_HOST_KEY = "/etc/dropbear/dropbear_ed25519_host_key"
GUEST_DROPBEAR = "/usr/sbin/dropbear"
GUEST_LIBDIR = "/lib/arm-linux-gnueabihf"
# kexec-tools for armhf, unpacked beside dropbear (its libc and loader are dropbear's): what /sbin/kexec
# loads beyond them (readelf -d, transitively; the Xen ones are called only when running under Xen).
KEXEC_LIBS = ("libxenctrl.so.4.17", "libxentoollog.so.1", "libxencall.so.1", "libxenevtchn.so.1", "libxengnttab.so.1",
              "libxenforeignmemory.so.1", "libxendevicemodel.so.1", "libxentoolcore.so.1")
GUEST_KEXEC = "/usr/sbin/kexec"


@dataclass(frozen=True)
class BedKeys:
    dir: Path

    @property
    def host_key(self) -> Path:             # dropbear format, for the guest
        return self.dir / "dropbear_ed25519_host_key"

    @property
    def host_pub(self) -> Path:             # "ssh-ed25519 AAAA..."
        return self.dir / "host_key.pub"

    @property
    def known_hosts(self) -> Path:          # "<alias> ssh-ed25519 AAAA...": the pin
        return self.dir / "known_hosts"

    @property
    def client_key(self) -> Path:           # OpenSSH private key, for the harness
        return self.dir / "client_key"

    @property
    def client_pub(self) -> Path:           # root's authorized_keys in the guest
        return self.dir / "client_key.pub"


def dropbear_bundle() -> Path:
    return cache_root() / "dropbear-armhf"


def kexec_bundle() -> Path:
    return cache_root() / "kexec-armhf"


def dropbear_missing() -> str | None:
    """What the test bed's guest lacks on this host (dropbear, kexec), with the command that fetches it;
    None when complete."""
    root, kx = dropbear_bundle(), kexec_bundle()
    bundles = [
        (root, "dropbear-bin:armhf", [root / "bin" / "dropbear", root / "lib" / "ld-linux-armhf.so.3",
                                      *(root / "lib" / l for l in DROPBEAR_LIBS)]),
        (kx, "kexec-tools:armhf", [kx / "bin" / "kexec", *(kx / "lib" / l for l in KEXEC_LIBS)]),
    ]
    for where, package, wanted in bundles:
        absent = [p for p in wanted if not p.exists()]
        if absent:
            name = package.split("-")[0]
            return (f"the SSH test bed's {name} for armhf is missing ({absent[0]}); fetch it with: bash "
                    f"images/setup-host.sh (it downloads {package} and its libraries with apt-get download and "
                    f"unpacks them into {where})")
    return None


def dropbear_ed25519(key: Ed25519PrivateKey) -> bytes:
    """Dropbear's private key file for an Ed25519 key: string "ssh-ed25519", then string(seed || public)."""
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    name = b"ssh-ed25519"
    return struct.pack(">I", len(name)) + name + struct.pack(">I", 64) + seed + pub


def openssh_public(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def ensure_keys(root: Path | None = None) -> BedKeys:
    """The test bed's keys, made the first time (under a lock, so two runs never make two). A known_hosts
    file that is there already is left as it is: the pin is the user's to change."""
    keys = BedKeys(root or cache_root() / "testbed")
    keys.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(keys.dir / ".lock"):
        if not keys.host_key.exists():
            host = Ed25519PrivateKey.generate()
            _write_private(keys.host_key, dropbear_ed25519(host))
            keys.host_pub.write_text(openssh_public(host) + "\n")
        if not keys.client_key.exists():
            client = Ed25519PrivateKey.generate()
            _write_private(keys.client_key, client.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
            keys.client_pub.write_text(openssh_public(client) + " cma-harness\n")
        if not keys.known_hosts.exists():
            keys.known_hosts.write_text(f"{HOST_KEY_ALIAS} {keys.host_pub.read_text().split()[0]} "
                                        f"{keys.host_pub.read_text().split()[1]}\n")
    return keys


def host_key_blob(keys: BedKeys) -> bytes:
    """The host key's public blob (as an SSH server offers it)."""
    return base64.b64decode(keys.host_pub.read_text().split()[1])


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(path.with_suffix(".tmp"), path)


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def initramfs_entries(keys: BedKeys, workdir: Path) -> list[str]:
    """gen_init_cpio lines that add dropbear, kexec, their libraries, the host key, root's account and its
    authorized key to the initramfs. Root's home is /root (0700), its key file 0600, both root's."""
    if (problem := dropbear_missing()) is not None:
        raise InfraError(problem)
    bundle, kx = dropbear_bundle(), kexec_bundle()
    etc = workdir / "testbed-etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\n")
    (etc / "shells").write_text("/bin/sh\n")
    lines = [f"dir {d} 0755 0 0" for d in ("/etc", "/etc/dropbear", GUEST_LIBDIR, "/var", "/var/log", "/dev/pts")]
    lines += [
        "dir /root/.ssh 0700 0 0",
        f"file {GUEST_DROPBEAR} {bundle / 'bin' / 'dropbear'} 0755 0 0",
        f"file /lib/ld-linux-armhf.so.3 {bundle / 'lib' / 'ld-linux-armhf.so.3'} 0755 0 0",
        *(f"file {GUEST_LIBDIR}/{lib} {bundle / 'lib' / lib} 0755 0 0" for lib in DROPBEAR_LIBS),
        f"file {GUEST_KEXEC} {kx / 'bin' / 'kexec'} 0755 0 0",
        *(f"file {GUEST_LIBDIR}/{lib} {kx / 'lib' / lib} 0755 0 0" for lib in KEXEC_LIBS),
        f"file {GUEST_HOST_KEY} {keys.host_key} 0600 0 0",
        f"file /root/.ssh/authorized_keys {keys.client_pub} 0600 0 0",
        f"file /etc/passwd {etc / 'passwd'} 0644 0 0",
        f"file /etc/group {etc / 'group'} 0644 0 0",
        f"file /etc/shells {etc / 'shells'} 0644 0 0",
    ]
    return lines
