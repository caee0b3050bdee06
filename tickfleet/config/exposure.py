"""Who may reach the fleet's two doors, the API and Flower: loopback, or a real secret.

The fleet used to be open by default: without ``TICKFLEET_API_KEY`` every mutating route
answered anyone, and Flower (through which anyone can shut workers down) listened on all
interfaces with a password the README printed. The rule now, as the FastAPI full-stack
template refuses default secrets outside local runs: a door bound to loopback may stay
open, and says so; a door bound anywhere else needs a secret of at least
``MIN_SECRET_CHARS`` characters that is no known placeholder, or it refuses to start.

``python -m tickfleet.config.exposure`` checks the environment ``make run`` hands its processes,
so a refusal is one clear line before anything starts.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping, Sequence

MIN_SECRET_CHARS = 16
# Values that ship in examples, templates and old READMEs: never a secret, however long.
# Any value containing a "change me" word is a placeholder too.
KNOWN_PLACEHOLDERS = frozenset({"tickfleet", "admin", "password", "secret"})
_PLACEHOLDER_WORDS = ("changeme", "change-me", "change_me", "changethis")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True when ``host`` (a bind address or name) reaches this machine only.

    Empty, ``0.0.0.0`` and ``::`` mean every interface; an unknown name may resolve
    anywhere: neither is loopback.
    """
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def weak_secret(secret: str | None) -> str | None:
    """Why ``secret`` protects nothing (unset, short, a placeholder), or None when it does."""
    if not secret:
        return "is not set"
    lowered = secret.lower()
    if lowered in KNOWN_PLACEHOLDERS or any(w in lowered for w in _PLACEHOLDER_WORDS):
        return "is a known default"
    if len(secret) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters"
    return None


def api_refusal(host: str, api_key: str | None) -> str | None:
    """The reason the API may not listen on ``host`` with ``api_key``, or None."""
    if is_loopback(host):
        return None
    why = weak_secret(api_key)
    if why is None:
        return None
    return (
        f"the API would listen on {host or 'every interface'} (API_HOST), outside loopback, "
        f"and TICKFLEET_API_KEY {why}: set it to a random secret of at least "
        f"{MIN_SECRET_CHARS} characters, or keep API_HOST=127.0.0.1"
    )


def flower_refusal(address: str, basic_auth: Sequence[str], oauth: bool = False) -> str | None:
    """The reason Flower may not listen on ``address``, or None.

    ``basic_auth`` holds Flower's ``user:password`` pairs; every password must be a real
    secret. Flower's own OAuth (``--auth``) protects it as well.
    """
    if is_loopback(address) or oauth:
        return None
    passwords = [pair.partition(":")[2] for pair in basic_auth if pair]
    whys = [weak_secret(p) for p in passwords] or [weak_secret(None)]
    why = next((w for w in whys if w is not None), None)
    if why is None:
        return None
    return (
        f"Flower would listen on {address or 'every interface'} (FLOWER_ADDRESS), outside "
        f"loopback, and the FLOWER_BASIC_AUTH password {why}: anyone reaching it could shut "
        f"workers down. Set FLOWER_BASIC_AUTH=user:<a random secret of at least "
        f"{MIN_SECRET_CHARS} characters>, or keep FLOWER_ADDRESS=127.0.0.1"
    )


def refusals(env: Mapping[str, str]) -> list[str]:
    """Every refusal the API and Flower would make with this environment."""
    flower_auth = [p for p in env.get("FLOWER_BASIC_AUTH", "").split(",") if p]
    found = [
        api_refusal(env.get("API_HOST", "127.0.0.1"), env.get("TICKFLEET_API_KEY")),
        flower_refusal(env.get("FLOWER_ADDRESS", "127.0.0.1"), flower_auth),
    ]
    return [r for r in found if r is not None]


def main() -> int:
    """Exit 2 with the reasons when this environment would expose a door without a secret."""
    found = refusals(os.environ)
    for refusal in found:
        print(f"refused: {refusal}", file=sys.stderr)
    return 2 if found else 0


if __name__ == "__main__":
    sys.exit(main())
