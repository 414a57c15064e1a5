"""launchbay's Jupyter server extension: the REST API the JupyterLab sidebar reads.

Enabled by ``pip install`` (etc/jupyter/jupyter_server_config.d/launchbay.json).
The store (a folder or a store URI) is ``c.LaunchbayServer.store`` if set, else ``LAUNCHBAY_STORE``, else the
nearest ``.launchbay/`` at or above the server's root directory.
"""

from __future__ import annotations

from typing import Any

from traitlets import Unicode
from traitlets.config import Configurable

from .service import LaunchbayService

__all__ = ["LaunchbayServer", "LaunchbayService"]


class LaunchbayServer(Configurable):
    """Settings of the launchbay server extension (``--LaunchbayServer.store=PATH_OR_URI``)."""

    store = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Store to serve, a folder or a store URI (default: LAUNCHBAY_STORE, else the nearest .launchbay/"
        " above root_dir).",
    )


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .handlers import ServiceHolder, setup_handlers

    settings = LaunchbayServer(parent=serverapp)
    holder = ServiceHolder(settings.store or None, str(serverapp.root_dir))
    setup_handlers(serverapp.web_app, holder)
    serverapp.log.info("launchbay: REST API at %slaunchbay/api/", serverapp.base_url)


def _unload_jupyter_server_extension(serverapp: Any) -> None:
    holder = serverapp.web_app.settings.get("launchbay")
    if holder is not None:
        holder.close()
