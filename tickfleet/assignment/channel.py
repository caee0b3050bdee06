"""Messages on the fleet's control channel (Redis pub/sub) and how to send them.

Streams listen here for assignment changes (apply the difference without reconnecting),
evictions (forget expired contracts) and shutdown requests (release the lease so another
worker takes over at once). Pub/sub is fire-and-forget, so every message is a hint that
the receiver can re-derive from durable state: an assignment message names a version the
stream then reads from the assignment key; a missed one is caught by periodic polling.
"""

from __future__ import annotations

from typing import Annotated, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class AssignmentChanged(_Message):
    type: Literal["assignment"] = "assignment"
    version: int


class Evict(_Message):
    type: Literal["evict"] = "evict"
    tokens: tuple[int, ...]
    reason: str = "expired"


class Shutdown(_Message):
    """Stop streams: all of them, those on one worker host name, or one stream."""

    type: Literal["shutdown"] = "shutdown"
    hostname: str | None = None
    stream: str | None = None

    def targets(self, hostname: str, stream: str) -> bool:
        return (self.hostname in (None, hostname)) and (self.stream in (None, stream))


Message = AssignmentChanged | Evict | Shutdown
_ADAPTER: TypeAdapter[Message] = TypeAdapter(Annotated[Message, Field(discriminator="type")])


def encode(message: Message) -> bytes:
    return message.model_dump_json().encode()


def decode(raw: bytes | str) -> Message | None:
    """The message, or None for anything that is not one (logged by the caller)."""
    try:
        return _ADAPTER.validate_json(raw)
    except ValidationError:
        return None


def publish(
    client: redis.Redis, channel: str, message: AssignmentChanged | Evict | Shutdown
) -> int:
    """Send a control message; returns how many listeners received it."""
    return int(client.publish(channel, encode(message)))
