"""Reading a secret from the file a ``VIGIL_<KEY>_FILE`` variable names (Docker and Kubernetes
mount secrets as files): bounded in size, UTF-8, surrounding whitespace dropped."""

from __future__ import annotations

from pathlib import Path

from vigil.config.errors import ConfigError

__all__ = ["SECRET_FILE_LIMIT", "read_secret_file"]

SECRET_FILE_LIMIT = 65_536  # bytes; a secret file larger than this is the wrong file


def read_secret_file(name: str, raw: str) -> str:
    """The secret in the file that variable ``name`` names, without surrounding whitespace.

    Errors name the variable and the file's path, never its content.
    """
    path = Path(raw.strip())
    try:
        with path.open("rb") as file:
            data = file.read(SECRET_FILE_LIMIT + 1)
    except OSError as err:
        raise ConfigError(name, str(path), f"cannot read the secret file: "
                                           f"{err.strerror or type(err).__name__}") from None
    if len(data) > SECRET_FILE_LIMIT:
        raise ConfigError(name, str(path), f"the secret file is larger than "
                                           f"{SECRET_FILE_LIMIT} bytes: not a secret?")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(name, str(path), "the secret file is not UTF-8 text") from None
