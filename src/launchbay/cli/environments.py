"""``launchbay env list|show|build|prune``: see, build and clean the environments of a project."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..environments.spec import EnvironmentSpec

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("env",)


def register(sub: Any, add: Any) -> None:
    """Add ``env`` and its subcommands to the CLI ."""
    p = add("env", cmd_env, "environments: list, show, build, prune")
    env_sub = p.add_subparsers(dest="env_command", required=True)

    def sub_add(name: str, help: str) -> argparse.ArgumentParser:
        q: argparse.ArgumentParser = env_sub.add_parser(name, help=help)
        q.add_argument("--store", default=argparse.SUPPRESS, help="store folder")
        q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
        return q

    sub_add("list", "declared and built environments")
    q = sub_add("show", "one environment: packages, hash, where it is built")
    q.add_argument("name", help="an [environments.NAME] of launchbay.toml")
    q = sub_add("build", "build an environment now (a venv, or an image with --target of type docker)")
    q.add_argument("name", help="an [environments.NAME] of launchbay.toml")
    q.add_argument("-t", "--target", help="a docker target: build its image instead of a local venv")
    q = sub_add("prune", "remove built environments that launchbay.toml no longer declares")
    q.add_argument("--all", action="store_true", help="remove every built environment not in use by a live run")
    q.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    q.add_argument("--images", action="store_true", help="also remove launchbay-env Docker images")


def cmd_env(args: argparse.Namespace) -> int:
    from .common import print_json
    from .common import session as session_for

    session = session_for(args)
    handler = {"list": _list, "show": _show, "build": _build, "prune": _prune}[args.env_command]
    return int(handler(session, args, print_json))


def _declared(session: Any) -> dict[str, EnvironmentSpec]:
    from ..environments.spec import parse_environment

    config = session.config
    root = config.root or Path.cwd()
    out = {}
    for name, section in sorted(config.environments.items()):
        out[name] = parse_environment(name, section, root)
    return out


def _venv_state(store_root: Path, spec: EnvironmentSpec) -> str:
    from ..environments.cache import READY, env_dir, is_locked

    if spec.user_managed:
        return "user-managed"
    folder = env_dir(store_root, spec.hash)
    if (folder / READY).is_file():
        return "built"
    if is_locked(folder / ".lock"):
        return "building"
    return "-"


def _docker_images(session: Any) -> list[dict[str, Any]] | None:
    """launchbay-env images on the default daemon, or None when there is none to ask."""
    import os

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        from ..environments.image import environment_images
        from ..targets.docker import docker_client

        return environment_images(docker_client(host))
    except Exception:  # no daemon, no docker package: the column shows '?'
        return None


def _image_hashes(session: Any, spec: EnvironmentSpec) -> set[str]:
    """The hashes this environment has as an image: its own base, or each docker target's image as base."""
    hashes = {spec.hash}
    for target in session.config.targets.values():
        if target.get("type") == "docker" and target.get("image") and not spec.image:
            hashes.add(spec.with_image(str(target["image"])).hash)
    return hashes


def _tags_for(session: Any, spec: EnvironmentSpec, images: list[dict[str, Any]]) -> list[str]:
    hashes = _image_hashes(session, spec)
    return [tag for image in images if image["hash"] in hashes for tag in image["tags"]]


def _list(session: Any, args: argparse.Namespace, print_json: Any) -> int:
    from ..environments.cache import READY, envs_root, read_json

    declared = _declared(session)
    images = _docker_images(session)
    store_root = session.store.cache_dir
    rows: list[dict[str, Any]] = []
    for name, spec in declared.items():
        rows.append(
            {
                "name": name,
                "hash": spec.hash,
                "packages": len(spec.pip),
                "python": spec.python,
                "image": spec.image,
                "venv": _venv_state(store_root, spec),
                "docker_images": None if images is None else _tags_for(session, spec, images),
            }
        )
    known = {spec.hash for spec in declared.values()}
    root = envs_root(store_root)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name not in known and (folder / READY).is_file():
            info = read_json(folder / "spec.json")
            rows.append(
                {
                    "name": f"{info.get('name') or '?'} (undeclared)",
                    "hash": folder.name,
                    "packages": len(info.get("pip") or []),
                    "python": info.get("python"),
                    "image": info.get("image"),
                    "venv": "built",
                    "docker_images": None,
                }
            )
    if getattr(args, "json", False):
        print_json(rows)
        return 0
    if not rows:
        print('No environments. Declare one in launchbay.toml, e.g. [environments.train] pip = ["six"].')
        return 0
    table = [("NAME", "HASH", "PACKAGES", "VENV", "IMAGES")]
    for r in rows:
        imgs = "?" if r["docker_images"] is None else (", ".join(r["docker_images"]) or "-")
        table.append((str(r["name"]), str(r["hash"])[:16], str(r["packages"]), str(r["venv"]), imgs))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _find(session: Any, name: str) -> EnvironmentSpec:
    from ..environments.spec import resolve_environment

    spec = resolve_environment(name, session.config, Path.cwd())
    assert spec is not None
    return spec


def _show(session: Any, args: argparse.Namespace, print_json: Any) -> int:
    from ..environments.cache import env_dir

    spec = _find(session, args.name)
    folder = env_dir(session.store.cache_dir, spec.hash)
    data = spec.to_json()
    images = _docker_images(session)
    data["docker_images"] = None if images is None else _tags_for(session, spec, images)
    data.update(
        venv=_venv_state(session.store.cache_dir, spec),
        folder=str(folder),
        build_log=str(folder / "build.log") if (folder / "build.log").is_file() else None,
        image_build_log=str(folder / "image-build.log") if (folder / "image-build.log").is_file() else None,
    )
    if getattr(args, "json", False):
        print_json(data)
        return 0
    for key in (
        "name",
        "hash",
        "python",
        "image",
        "user_managed",
        "installer",
        "venv",
        "folder",
        "build_log",
        "image_build_log",
    ):
        print(f"{key:16} {data[key]}")
    if data["docker_images"] is not None:
        print(f"{'docker_images':16} {', '.join(data['docker_images']) or '-'}")
    print(f"{'sources':16} {', '.join(spec.sources) or '-'}")
    print("packages:" + ("" if spec.pip else " none"))
    for line in sorted(spec.pip):
        print(f"  {line}")
    if spec.env_vars:
        print("env:")
        for k, v in sorted(spec.env_vars.items()):
            print(f"  {k}={v}")
    return 0


def _build(session: Any, args: argparse.Namespace, print_json: Any) -> int:
    spec = _find(session, args.name)
    as_json = getattr(args, "json", False)

    def progress(message: str) -> None:
        if not as_json:
            print(f"launchbay: {message}", file=sys.stderr)

    if args.target:
        from ..environments.image import ensure_image
        from ..targets.docker import DockerTarget

        target = session.target(args.target)
        if not isinstance(target, DockerTarget):
            raise ConfigError(
                f"Target {args.target!r} is of type {target.type_name}; --target takes a docker target "
                "(without it, `env build` makes a local venv)."
            )
        built = ensure_image(
            target.client(ping=True),
            target.with_base(spec),
            session.store.cache_dir,
            target.docker_host(),
            progress,
            target.image_settings(),
        )
        result: dict[str, Any] = built.state()
    else:
        from ..environments.venv import ensure_venv

        result = ensure_venv(session.store.cache_dir, spec, progress).state()
    if as_json:
        print_json(result)
    else:
        where = result.get("image") or result.get("python")
        print(f"{spec.label}: {'built' if result['built'] else 'already built'} ({where})")
    return 0


def _in_use(session: Any) -> set[str]:
    """Hashes of environments that live (non-terminal) runs use."""
    used = set()
    for record in session.store.list_runs(limit=None):
        if not record.status.is_terminal():
            env = record.target_state.get("environment") or {}
            if env.get("hash"):
                used.add(env["hash"])
    return used


def _prune(session: Any, args: argparse.Namespace, print_json: Any) -> int:
    from ..environments.cache import LAST_USED, envs_root, is_locked

    keep = _in_use(session)
    if not args.all:
        for spec in _declared(session).values():
            keep |= _image_hashes(session, spec)
    removed: list[dict[str, Any]] = []
    root = envs_root(session.store.cache_dir)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name in keep or is_locked(folder / ".lock") or is_locked(folder / ".image.lock"):
            continue
        last = (folder / LAST_USED).stat().st_mtime if (folder / LAST_USED).exists() else None
        removed.append(
            {
                "kind": "venv",
                "hash": folder.name,
                "path": str(folder),
                "last_used": time.strftime("%Y-%m-%d %H:%M", time.localtime(last)) if last else None,
            }
        )
        if not args.dry_run:
            shutil.rmtree(folder, ignore_errors=True)
    if args.images:
        removed += _prune_images(session, keep, args.dry_run)
    if getattr(args, "json", False):
        print_json(removed)
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for item in removed:
        print(f"{verb} {item['kind']} {item['hash'][:16]}  {item.get('path') or item.get('tag')}")
    if not removed:
        print("Nothing to prune.")
    return 0


def _prune_images(session: Any, keep: set[str], dry_run: bool) -> list[dict[str, Any]]:
    import os

    from ..environments.image import environment_images
    from ..targets.docker import docker_client

    client = docker_client(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"), ping=True)
    out = []
    for image in environment_images(client):
        if image["hash"] in keep:
            continue
        out.append({"kind": "image", "hash": image["hash"], "tag": ", ".join(image["tags"]) or image["id"]})
        if not dry_run:
            try:
                client.images.remove(image["id"], force=False)
            except Exception as exc:  # an image a container still uses stays
                out[-1]["error"] = str(exc)
    return out
