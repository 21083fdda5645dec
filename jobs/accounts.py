"""User accounts and the one-time tokens that mails carry (verify e-mail, reset password).

Shared by the web process (signup, login, verifying a token) and the `email` job (which
issues the token it mails, so that no token ever travels through the queue or its logs).
Only a token's SHA-256 is stored; using one deletes every token of its purpose and user.

    ts:user:{id}            hash: id, email, name, language, passwordHash, emailVerified, …
    ts:user-email:{email}   the id of the account with that (lower-cased) address
    ts:mail-token:{purpose}:{sha256}   the user id, expiring
    ts:mail-tokens:{purpose}:{id}      the digests of a user's outstanding tokens
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any, Literal

from redis.asyncio import Redis

from jobs.infra import keys
from jobs.record.clock import now_iso

Purpose = Literal["verify", "reset"]
TOKEN_TTL_S: dict[Purpose, int] = {"verify": 24 * 3600, "reset": 3600}


def normalize(email: str) -> str:
    return email.strip().lower()


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def public(user: dict[str, Any]) -> dict[str, Any]:
    """What a client may see of an account."""
    return {
        "id": user["id"],
        "email": user["email"],
        "name": user["name"],
        "language": user["language"],
        "emailVerified": user["emailVerified"] == "1",
        "createdAt": user["createdAt"],
    }


class UserStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def create(
        self, email: str, name: str, password_hash: str, language: str
    ) -> dict[str, Any] | None:
        """The new account, or None when the address is taken."""
        user_id = str(uuid.uuid4())
        if not await self.redis.set(keys.user_by_email(normalize(email)), user_id, nx=True):
            return None
        user = {
            "id": user_id,
            "email": email,
            "name": name,
            "language": language,
            "passwordHash": password_hash,
            "emailVerified": "0",
            "createdAt": now_iso(),
        }
        await self.redis.hset(keys.user(user_id), mapping=user)  # type: ignore[misc]
        return user

    async def get(self, user_id: str) -> dict[str, Any] | None:
        user: dict[str, Any] = await self.redis.hgetall(keys.user(user_id))  # type: ignore[misc]
        return user or None

    async def by_email(self, email: str) -> dict[str, Any] | None:
        user_id = await self.redis.get(keys.user_by_email(normalize(email)))
        return None if user_id is None else await self.get(user_id)

    async def update(self, user_id: str, **fields: str) -> None:
        await self.redis.hset(keys.user(user_id), mapping=fields)  # type: ignore[misc]

    async def issue_token(self, purpose: Purpose, user_id: str) -> str:
        token = secrets.token_urlsafe(32)
        ttl = TOKEN_TTL_S[purpose]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.mail_token(purpose, digest(token)), user_id, ex=ttl)
            pipe.sadd(keys.mail_tokens(purpose, user_id), digest(token))
            pipe.expire(keys.mail_tokens(purpose, user_id), ttl)
            await pipe.execute()
        return token

    async def use_token(self, purpose: Purpose, token: str) -> str | None:
        """The user id the token was issued to, once; None if unknown, used or expired.
        Using one ends every other token of the same purpose mailed to that user."""
        user_id: str | None = await self.redis.getdel(keys.mail_token(purpose, digest(token)))
        if user_id is None:
            return None
        # one atomic step, so that of two tokens used at once only one wins
        claim = self.redis.eval(CLAIM, 1, keys.mail_tokens(purpose, user_id), digest(token))
        claimed = await claim  # type: ignore[misc]
        return user_id if claimed else None


# KEYS[1]: a user's outstanding tokens of one purpose; ARGV[1]: the digest being used
CLAIM = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
