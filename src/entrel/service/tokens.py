"""Reading a bearer token from the file or environment variable a setting names.

Secrets never sit in the TOML file itself (it is often checked in or shared);
the config only says where they are.
"""

from __future__ import annotations

import os
from pathlib import Path

from entrel.config import ConfigError

__all__ = ["read_token"]


def read_token(file: str, env: str, setting: str, env_optional: bool = False) -> str | None:
    """The token in `file`, else in the environment variable `env`; None when neither is named.

    Surrounding whitespace is dropped (files end with a newline). A named file
    that cannot be read, or that is empty, is a ConfigError naming `setting`;
    so is a named variable that is unset or empty, unless `env_optional`
    (a client's default variable may simply not be set).
    """
    if file:
        try:
            token = Path(file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{setting}_file: cannot read {file}: {exc}") from None
        if not token:
            raise ConfigError(f"{setting}_file: {file} is empty")
        return token
    if env:
        token = os.environ.get(env, "").strip()
        if token:
            return token
        if not env_optional:
            raise ConfigError(f"{setting}_env: the environment variable {env} is unset or empty")
    return None
