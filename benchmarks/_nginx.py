"""nginx as a child process with deploy/nginx.conf.template: render it, wrap it in a main config of its own (prefix,
pid file, temp paths and logs in one folder), check it (`nginx -t`) and run it in the foreground on loopback.

Used by benchmarks/gateway.py and by the template's test; never touches the system's nginx service or its files.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
VARIABLES = ("SMARTGATE_LISTEN", "SMARTGATE_GATEWAY", "SMARTGATE_DECLARATIONS", "SMARTGATE_PROVENANCE",
             "SMARTGATE_INSPECTION", "SMARTGATE_WEBHOOKS",
             "SMARTGATE_TRACEABILITY", "SMARTGATE_EXCHANGE")  # fmt: skip


# nginx creates its temp folders at start, at the absolute paths Debian compiled in unless the config moves them.
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str | None:
    """The nginx executable (Debian puts it in /usr/sbin, often not on a user's PATH), if installed."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if
                                          os.access(p, os.X_OK)), None)  # fmt: skip


def render(values: Mapping[str, str], template: str | None = None) -> str:
    """The template with `${NAME}` replaced for exactly the VARIABLES (as `envsubst '${A} ${B}'` does); every one
    must be given."""
    text = TEMPLATE.read_text() if template is None else template
    missing = [name for name in VARIABLES if name not in values]
    if missing:
        raise ValueError(f"missing template values: {', '.join(missing)}")
    for name in VARIABLES:
        text = text.replace("${" + name + "}", values[name])
    return text


def template_prefixes(text: str) -> dict[str, set[str]]:
    """{upstream service: the path prefixes its regex locations route} of a rendered or raw template."""
    routes: dict[str, set[str]] = {}
    pattern = re.compile(r"location ~ \^/api/v1/\(([^)]*)\)\(/\|\$\) \{\s*proxy_pass http://smartgate_(\w+);")
    for names, service in pattern.findall(text):
        routes.setdefault(service, set()).update(f"/api/v1/{n}" for n in names.split("|"))
    return routes


def write_config(folder: Path, values: Mapping[str, str], *, access_log: bool = False) -> Path:
    """Write the rendered template and a main config that includes it into `folder`; return the main config.
    One worker process (the Python gateway is one process too), everything nginx writes stays in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "smartgate.conf").write_text(render(values))
    for sub in (*TEMP_PATHS, "logs"):
        (folder / sub).mkdir(exist_ok=True)
        (folder / sub).chmod(0o777)  # the worker runs as another user when nginx is started as root
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    main = folder / "nginx.conf"
    main.write_text(
        f"{user}worker_processes 1;\n"
        f"pid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'logs' / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    access_log {folder / 'logs' / 'access.log' if access_log else 'off'};\n"
        + "".join(f"    {name}_temp_path {folder / name};\n" for name in TEMP_PATHS)
        + "    keepalive_requests 100000;\n"
        f"    include {folder / 'smartgate.conf'};\n"
        "}\n"
    )
    return main


def check(binary: str, main: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` of a main config (its output in stderr)."""
    return subprocess.run([binary, "-t", "-q", *_where(main)], capture_output=True, text=True, timeout=30)


def command(binary: str, main: Path) -> list[str]:
    """The command that runs nginx in the foreground (master and its worker) as a child of the caller."""
    return [binary, *_where(main), "-g", "daemon off;"]


def _where(main: Path) -> list[str]:
    # -e: the error log before the config is read (else the compiled-in /var/log/nginx/error.log).
    return ["-p", str(main.parent), "-c", str(main), "-e", str(main.parent / "logs" / "error.log")]
