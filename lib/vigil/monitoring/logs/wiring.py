"""How the logs are wired into the process: the stdlib's loggers and vigil's configuration.

:func:`configure_logging` puts vigil's line shape on the stdlib root logger (and makes its
``stream`` the default one); :func:`logging_config` is the ``logging.config.dictConfig`` dict
for gunicorn's and uvicorn's loggers (:data:`SERVER_LOGGERS`); and a :func:`vigil.configure`
listener makes the process fields again and has every live formatter and logger follow the new
settings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import IO, Any

from prometheus_client import CollectorRegistry

from vigil.config import ConfigError, VigilConfig, get_config, on_configure
from vigil.monitoring.logs import formatting, process, structured, writing
from vigil.monitoring.logs.levels import LEVEL_NUMBERS, level_number
from vigil.monitoring.logs.writing import JsonLineHandler

__all__ = ["SERVER_LOGGERS", "configure_logging", "logging_config"]

# Where dictConfig finds the formatter and the handler: the package's public path, which keeps
# working whichever module holds them.
_PUBLIC = __name__.rpartition(".")[0]


def configure_logging(level: str | None = None, *, stream: IO[str] | None = None,
                      registry: CollectorRegistry | None = None) -> JsonLineHandler:
    """Put vigil's JSON line shape on the stdlib root logger.

    Third-party libraries' records then come out like vigil's own: ``component`` is the
    logger's name and ``extra=`` fields become ``metadata``. Calling it again replaces the
    handler it installed before (it never stacks two). Returns the handler.

    ``stream`` (default: stdout) also becomes where every :class:`StructuredLogger` built
    without its own ``stream`` writes, so one call sends all of the process's JSON lines to a
    file.
    """
    writing.default_stream = stream
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, JsonLineHandler):
            root.removeHandler(handler)
    handler = JsonLineHandler(stream=stream, registry=registry)
    root.addHandler(handler)
    root.setLevel(level_number(level) if level is not None else
                  LEVEL_NUMBERS[get_config().monitoring.logging.level])
    return handler


# The loggers gunicorn and uvicorn write their own lines to (uvicorn.error propagates to
# uvicorn; under gunicorn, uvicorn-worker hands uvicorn.error and uvicorn.access the handlers of
# gunicorn.error and gunicorn.access).
SERVER_LOGGERS: tuple[str, ...] = (
    "gunicorn.error", "gunicorn.access", "uvicorn", "uvicorn.error", "uvicorn.access")


def logging_config(loggers: Iterable[str] = SERVER_LOGGERS, *,
                   level: str | None = None) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dict sending ``loggers`` and the root logger to
    stdout as vigil JSON lines (:class:`JsonLineFormatter` on a :class:`JsonLineHandler`).

    The default ``loggers`` are gunicorn's and uvicorn's own (:data:`SERVER_LOGGERS`), so their
    start-up, error and access lines come out like the application's::

        # gunicorn.conf.py (gunicorn -c gunicorn.conf.py -k uvicorn_worker.UvicornWorker app:app)
        from vigil.monitoring.logs import logging_config
        logconfig_dict = logging_config()

        uvicorn.run(app, log_config=logging_config())        # uvicorn from Python

        # uvicorn from the command line: a JSON (or YAML) file
        python -c "import json, vigil; print(json.dumps(vigil.logging_config()))" > log.json
        uvicorn app:app --log-config log.json

    Each named logger gets the handler itself and stops propagating (no line is written twice;
    uvicorn-worker copies gunicorn's loggers' handlers, so they must hold one). The root
    logger gets it too: other stdlib loggers (the application's, third-party libraries') write
    vigil lines as after :func:`configure_logging`. ``level`` (one of ``DEBUG`` ... ``CRITICAL``)
    is set on every named logger and the root; without it the named loggers keep the level
    their server gives them (gunicorn's ``--log-level``, uvicorn's) and the root gets
    ``monitoring.logging.level``. The dict is plain data (``json.dumps`` takes it): edit it
    freely, e.g. another handler for a file. Lines carry ``service``/``host``/``pid`` as
    ``monitoring.logging.*`` says, also in each gunicorn worker (the pid after the fork).
    """
    names = [loggers] if isinstance(loggers, str) else list(loggers)
    for name in names:
        if not isinstance(name, str) or not name.strip() or name == "root":
            raise ConfigError("loggers", name, "expected logger names such as "
                              "'gunicorn.error' (the root logger is always included)")
    if level is not None:
        level_number(level)  # a ConfigError naming the levels
    root_level = str(level).upper() if level is not None else \
        get_config().monitoring.logging.level
    named: dict[str, Any] = {"propagate": False}
    if level is not None:
        named["level"] = root_level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"vigil-json": {"()": f"{_PUBLIC}.JsonLineFormatter"}},
        "handlers": {"vigil-json": {"class": f"{_PUBLIC}.JsonLineHandler",
                                    "formatter": "vigil-json"}},
        "loggers": {name: dict(named, handlers=["vigil-json"]) for name in names},
        "root": {"level": root_level, "handlers": ["vigil-json"]},
    }


@on_configure
def _on_configure(config: VigilConfig) -> None:
    process.apply_settings(config.monitoring.logging)
    with formatting.formatters_lock:
        formatters = list(formatting.formatters)
    for formatter in formatters:
        formatter._apply(config.monitoring.logging)
    with structured.loggers_lock:
        loggers = list(structured.loggers)
    for logger in loggers:
        logger._apply(config)
