"""v1 sign-in classes: accepted and ignored, since launchbay needs no Azure account."""

from __future__ import annotations

from typing import Any


class _NoSignIn:
    """Accepts v1's arguments; launchbay's store and targets need no Azure credentials."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def get_authentication_header(self) -> dict[str, str]:
        return {}


class InteractiveLoginAuthentication(_NoSignIn):
    pass


class ServicePrincipalAuthentication(_NoSignIn):
    pass


class MsiAuthentication(_NoSignIn):
    pass


class AzureCliAuthentication(_NoSignIn):
    pass


class TokenAuthentication(_NoSignIn):
    pass


__all__ = [
    "AzureCliAuthentication",
    "InteractiveLoginAuthentication",
    "MsiAuthentication",
    "ServicePrincipalAuthentication",
    "TokenAuthentication",
]
