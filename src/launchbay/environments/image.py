"""Docker images for environments: the base image (or the environment's Dockerfile) plus the packages.

``launchbay-env:<hash[:16]>`` is built once (``docker build`` with host
networking, so pip reaches the package index; the host's CA bundle goes into
the build context for HTTPS through a proxy) and reused by every later run.
The packages go into a venv at ``/opt/env`` made with the image's own python.
A base image the daemon lacks is pulled (pull.py); with ``[images] registry``
the built image is pushed there, and another daemon pulls it instead of building.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EnvironmentBuildError
from .cache import Progress, build_lock, env_dir, failing_lines, mark_used, say
from .pull import ensure_present, push, try_pull
from .registries import ImageSettings
from .spec import EnvironmentSpec, Materialised

IMAGE_REPO = "launchbay-env"
ENV_PREFIX = "/opt/env"
ENV_PYTHON = f"{ENV_PREFIX}/bin/python"
LABEL_HASH = "launchbay.env.hash"
LABEL_NAME = "launchbay.env.name"
IMAGE_BUILD_LOG = "image-build.log"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_STEP = re.compile(r"^Step \d+/\d+ :")
_PIP_LINE = re.compile(r"^\s*(Collecting|Downloading|Installing|Successfully)")


@dataclass
class EnvironmentImage(Materialised):
    """A Docker image for an environment, tagged by its hash."""

    tag: str = ""
    python: str = ENV_PYTHON  # the interpreter that runs the entry point inside it
    pulled_from: str | None = None  # the registry copy it came from, instead of a build here

    def state(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"dockerfile": True} if self.spec.dockerfile else {}
        if self.pulled_from:
            extra["pulled_from"] = self.pulled_from
        return {**super().state(), "image": self.tag, "base_image": self.spec.image, **extra}


def image_tag(spec: EnvironmentSpec) -> str:
    return f"{IMAGE_REPO}:{spec.short}"


def image_python(spec: EnvironmentSpec) -> str:
    """The interpreter inside the base image that makes the venv."""
    if not spec.python:
        return "python3"
    if re.match(r"^\d+(\.\d+)*$", spec.python):
        return f"python{spec.python}"
    return spec.python


def dockerfile(spec: EnvironmentSpec, with_ca: bool) -> str:
    """The Dockerfile of the environment's image: its own Dockerfile or ``FROM image``, then the packages."""
    lines = [spec.dockerfile.rstrip()] if spec.dockerfile else [f"FROM {spec.image}"]
    if not spec.needs_build:  # a Dockerfile and nothing to install: that image as it is
        return "\n".join(lines) + "\n"
    cert = "PIP_CERT=/etc/launchbay/build-ca.crt " if with_ca else ""
    if with_ca:
        lines.append("COPY build-ca.crt /etc/launchbay/build-ca.crt")
    lines += [
        "COPY requirements.txt /etc/launchbay/requirements.txt",
        f"RUN {image_python(spec)} -m venv {ENV_PREFIX} && {cert}PIP_DISABLE_PIP_VERSION_CHECK=1 "
        f"{ENV_PYTHON} -m pip install --no-cache-dir --progress-bar off -r /etc/launchbay/requirements.txt",
        f"ENV VIRTUAL_ENV={ENV_PREFIX} PATH={ENV_PREFIX}/bin:${{PATH:-{_DEFAULT_PATH}}}",
    ]
    return "\n".join(lines) + "\n"


def ensure_image(
    client: Any,
    spec: EnvironmentSpec,
    store_root: Path,
    where: str,
    progress: Progress | None = None,
    settings: ImageSettings | None = None,
) -> EnvironmentImage:
    """The environment's image, made on first use; a cache hit is one image lookup.

    Made means: pulled from ``[images] registry`` when someone pushed it there already, else built
    (its base image pulled first when the daemon lacks it) and pushed there when one is set."""
    from docker.errors import ImageNotFound

    settings = settings or ImageSettings()
    started = time.perf_counter()
    tag = image_tag(spec)
    folder = env_dir(store_root, spec.hash)
    log = folder / IMAGE_BUILD_LOG
    python = ENV_PYTHON if spec.needs_build else image_python(spec)
    try:
        client.images.get(tag)
        seconds = time.perf_counter() - started
        return EnvironmentImage(spec, False, seconds, log if log.is_file() else None, tag=tag, python=python)
    except ImageNotFound:
        pass
    if not spec.image and not spec.dockerfile:
        raise EnvironmentBuildError(
            f'Environment {spec.label} has no base image; set image = "..." in its [environments] section '
            "or in the docker target."
        )
    pulled_from = None
    with build_lock(folder / ".image.lock", progress, f"image for environment {spec.label}"):
        try:
            client.images.get(tag)
            built = False
        except ImageNotFound:
            remote = f"{settings.registry}/{tag}" if settings.registry else None
            if remote and try_pull(client, remote, where, settings, progress):
                client.images.get(remote).tag(IMAGE_REPO, tag=spec.short)
                built, pulled_from = False, remote
            else:
                if spec.image:
                    ensure_present(client, spec.image, where, settings, progress)
                _build(client, spec, tag, folder, progress)
                built = True
                if remote:
                    failed = push(client, tag, remote, settings, progress)
                    if failed:
                        say(progress, f"environment {spec.label}: could not push {remote} ({failed}); the run goes on")
        mark_used(folder)
    made = EnvironmentImage(spec, built, time.perf_counter() - started, log if log.is_file() else None, tag=tag)
    made.python, made.pulled_from = python, pulled_from
    return made


def _build(client: Any, spec: EnvironmentSpec, tag: str, folder: Path, progress: Progress | None) -> None:
    from docker.errors import DockerException

    folder.mkdir(parents=True, exist_ok=True)
    log_tmp = folder / f"{IMAGE_BUILD_LOG}.tmp"
    started = time.time()
    base = spec.image or "its Dockerfile"
    say(progress, f"environment {spec.label}: building image {tag} from {base}")
    error: str | None = None
    with tempfile.TemporaryDirectory(prefix="launchbay-build-") as ctx, open(log_tmp, "w") as log:
        context = Path(ctx)
        with_ca = HOST_CA_BUNDLE.is_file()
        if with_ca:
            shutil.copyfile(HOST_CA_BUNDLE, context / "build-ca.crt")
        (context / "requirements.txt").write_text(spec.requirements_text())
        (context / "Dockerfile").write_text(dockerfile(spec, with_ca))
        log.write(f"# image {tag} for environment {spec.label}\n# hash {spec.hash}\n")
        log.writelines(f"# {note}\n" for note in spec.notes)
        log.write((context / "Dockerfile").read_text())
        labels = {LABEL_HASH: spec.hash, LABEL_NAME: spec.name or "inline"}
        try:
            stream = client.api.build(
                path=ctx, tag=tag, rm=True, forcerm=True, network_mode="host", decode=True, labels=labels, pull=False
            )
            for chunk in stream:
                text = chunk.get("stream") or chunk.get("status") or ""
                if text:
                    log.write(text if text.endswith("\n") else text + "\n")
                    for line in text.splitlines():
                        if _STEP.match(line) or _PIP_LINE.match(line):
                            say(progress, f"environment {spec.label}: {line.strip()}")
                if "error" in chunk:
                    error = str(chunk["error"]).strip()
                    log.write(f"ERROR: {error}\n")
        except DockerException as exc:
            error = str(exc)
            log.write(f"ERROR: {error}\n")
        log.write(f"# {'failed' if error else 'built'} after {time.time() - started:.1f} s\n")
    os.replace(log_tmp, folder / IMAGE_BUILD_LOG)
    if error:
        lines = failing_lines((folder / IMAGE_BUILD_LOG).read_text(errors="replace"))
        what = "Dockerfile or package list" if spec.dockerfile else "package list"
        raise EnvironmentBuildError(
            f"Environment {spec.label}: building image {tag} from {base} failed ({error.splitlines()[0][:200]})."
            f" Fix its {what} and submit again. Failing lines of {folder / IMAGE_BUILD_LOG}:\n"
            + "\n".join(f"  {ln}" for ln in lines)
        )
    say(progress, f"environment {spec.label}: image {tag} ready in {time.time() - started:.1f} s")


def environment_images(client: Any) -> list[dict[str, Any]]:
    """Every image launchbay built for an environment: tag, hash, name, size."""
    out = []
    for image in client.images.list(filters={"label": LABEL_HASH}):
        labels = image.labels or {}
        out.append(
            {
                "id": image.id,
                "tags": list(image.tags),
                "hash": labels.get(LABEL_HASH),
                "name": labels.get(LABEL_NAME),
                "size": image.attrs.get("Size"),
            }
        )
    return out
