"""The one rule for text vigil writes out: every string is valid Unicode, whatever it was given.

Text reaches vigil's outputs from anywhere: file names from ``os.listdir`` (undecodable bytes
arrive as lone surrogates, ``os.fsdecode(b"report-\\xff.pdf") == "report-\\udcff.pdf"``),
exception messages, user ids, objects whose ``__str__`` raises. A Prometheus label value, a JSON
log line and an alert must be UTF-8, and one string that is not would make every later scrape
of ``/metrics`` fail, or make a logging call raise into the caller's ``except`` block. So:

**The rule** (:func:`safe_text`):

* a ``str`` is kept as it is when it encodes to UTF-8, which every ASCII string does (checked
  first, with ``str.isascii()``: the common case costs one C call);
* otherwise each **lone surrogate** becomes U+FFFD REPLACEMENT CHARACTER (``"report-\\ufffd.pdf"``);
  a high and a low surrogate written one after the other as two code points are joined into the
  character they encode (``"\\ud83d\\ude00"`` -> ``"😀"``), as a UTF-16 decoder (or ``json.loads``)
  would. U+FFFD is what a UTF-8 decoder writes for the same invalid bytes
  (``b"\\xff".decode(errors="replace")``, Go's ``encoding/json``);
* anything that is not a ``str`` is converted with ``str()``, then the same applies; an object
  whose ``str()`` raises (or returns something that is not a ``str``) becomes
  ``<unprintable TypeName>``. An ``int`` too long for ``str()`` (``10 ** 5000``) is such a value.

Where it is applied, each where text enters an output:

* **labels**: :meth:`vigil.monitoring.instruments.Family.labels` (every labelled vigil metric),
  the scrape-time collectors of ``@monitor_performance`` and of the tracer, breaker names and
  retry operation names (so the name the object reports is the label's), and metric names and
  tag keys given to :class:`~vigil.monitoring.metrics.PerformanceMonitor`;
* **log lines**: messages and components become text by this rule; the serialised JSON line is
  then checked once (a raw surrogate can only sit inside a JSON string, so replacing it in the
  line replaces it in that string); see :mod:`vigil.monitoring.logs`;
* **alerts**: component, message, source, labels, annotations and every string in metadata, when
  the alert is built (:meth:`vigil.monitoring.alerts.AlertManager.build_alert`), so its
  fingerprint, its metrics and ``dict(alert)`` are valid UTF-8 too;
* **handled errors**: the recovery manager's component, operation and error message, before
  they reach its labels, log line, alert and history.

Nothing here raises, whatever it is given.
"""

from __future__ import annotations

__all__ = ["REPLACEMENT", "safe_text", "unprintable", "valid_text"]

REPLACEMENT = "\ufffd"


def valid_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (and surrogate pairs joined).

    ``text`` must be a ``str``; ASCII text and text that already encodes are returned as is.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # surrogatepass writes each surrogate as its UTF-16 unit; decoding joins valid pairs and
        # turns every unit left alone into one U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def unprintable(value: object) -> str:
    """``<unprintable TypeName>``: what a value whose ``str()`` fails is written as."""
    return f"<unprintable {valid_text(type(value).__name__)}>"


def safe_text(value: object) -> str:
    """``value`` as text that encodes to UTF-8 (the module's rule); never raises."""
    if type(value) is str:
        return value if value.isascii() else valid_text(value)
    try:
        # A str subclass is taken as the characters it holds (what a JSON encoder writes),
        # not as whatever its __str__ answers.
        text = str.__str__(value) if isinstance(value, str) else str(value)
    except Exception:
        return unprintable(value)
    if type(text) is not str:  # __str__ may answer a str subclass
        text = str.__str__(text)
    return text if text.isascii() else valid_text(text)
