"""A Jupyter identity provider for the control-plane tests: each token is one user, so a
test can act as alice, bob or an unknown person by choosing the token it sends."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from traitlets import Dict


class TokenUsers(IdentityProvider):
    #: token -> (user name, [Hub-style groups])
    users = Dict(config=True)

    def get_user(self, handler: Any) -> User | None:
        header = handler.request.headers.get("Authorization", "")
        token = header.removeprefix("token ").strip()
        found = self.users.get(token)
        if found is None:
            return None
        name, groups = found
        handler._token_authenticated = True  # as Jupyter's own tokens: no XSRF cookie needed
        user = User(username=name)
        user.hub_user = {"name": name, "groups": list(groups)}  # type: ignore[attr-defined]
        return user
