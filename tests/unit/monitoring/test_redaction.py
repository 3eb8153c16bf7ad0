"""vigil.monitoring.logs.redaction: each branch of redact() on its own (the rest of its
behaviour is pinned in test_logs, test_log_lines and tests/bench/test_hot_paths)."""

from __future__ import annotations

import dataclasses
import types
from collections import OrderedDict, deque
from typing import Any

from vigil.monitoring.logs import redaction
from vigil.monitoring.logs.redaction import REDACTED, redact

KEYS = ("password", "token")


def test_mappings_that_are_not_dicts_come_back_as_redacted_dicts() -> None:
    """An OrderedDict or a read-only mapping proxy is walked like a dict and returned as one."""
    for mapping in (OrderedDict(password="p", n=1), types.MappingProxyType({"password": "p",
                                                                            "n": 1})):
        out = redact({"m": mapping}, KEYS)["m"]
        assert type(out) is dict
        assert out == {"password": REDACTED, "n": 1}


def test_collections_become_lists_and_the_callers_objects_are_untouched() -> None:
    """Tuples, deques and lists come back as new lists of redacted items; the input is not
    changed."""
    inner = {"token": "t", "url": "https://u:secret@h/"}
    value = {"t": (inner,), "d": deque([inner]), "l": [inner]}
    out = redact(value, KEYS)
    expected = {"token": REDACTED, "url": "https://[REDACTED]@h/"}
    assert out == {"t": [expected], "d": [expected], "l": [expected]}
    assert inner == {"token": "t", "url": "https://u:secret@h/"}


def test_keys_that_are_not_strings_are_kept_or_made_text_and_still_judged() -> None:
    """None, bool, int and float keys stay; a bytes or tuple key becomes its text, and is
    redacted when that text looks secret."""
    out = redact({None: 1, True: 2, 3: 3, 1.5: 4, b"password": "p", ("a",): 5}, KEYS)
    assert out == {None: 1, True: 2, 3: 3, 1.5: 4, "b'password'": REDACTED, "('a',)": 5}


def test_a_dataclass_type_is_kept_and_an_instance_is_expanded() -> None:
    """Only a dataclass *instance* becomes a dict of its fields; the class itself is a plain
    object, kept as it is."""

    @dataclasses.dataclass
    class Login:
        user: str
        password: str

    out = redact({"cls": Login, "obj": Login("u", "p")}, KEYS)
    assert out == {"cls": Login, "obj": {"user": "u", "password": REDACTED}}


def test_the_key_memo_stays_bounded_and_right_after_it_empties() -> None:
    """More distinct keys than the memo holds: it is emptied instead of growing, and every key
    is still judged correctly."""
    keys: tuple[str, ...] = ("memo-test-needle",)
    size = redaction._SECRET_MEMO_SIZE
    metadata: dict[str, Any] = {f"k{i}": i for i in range(size + 10)}
    metadata["my-memo-test-needle"] = "s"
    out = redact(metadata, keys)
    assert out["my-memo-test-needle"] == REDACTED
    assert out["k0"] == 0
    assert len(redaction._secret_memo(keys)) <= size
    assert redact({"k0": 0, "my-memo-test-needle": "s"}, keys) == {
        "k0": 0, "my-memo-test-needle": REDACTED}


def test_a_str_subclass_value_has_its_credentials_masked() -> None:
    """A StrEnum member (a str subclass) holding a URL with a password is masked like a str."""
    import enum

    class Endpoint(enum.StrEnum):
        DB = "postgres://admin:hunter2@db:5432/app"

    out = redact({"dsn": Endpoint.DB, "nested": [Endpoint.DB]}, KEYS)
    assert "hunter2" not in repr(out)
    assert out["dsn"] == f"postgres://{REDACTED}@db:5432/app"


def test_needles_given_in_any_case_still_match() -> None:
    """A tuple of needles not in lower case is lowered: 'Password' redacts db_password."""
    out = redact({"db_password": "p", "API-Token": "t", "n": 1}, ("Password", "TOKEN"))
    assert out == {"db_password": REDACTED, "API-Token": REDACTED, "n": 1}


def test_alternating_tuples_of_needles_each_get_their_own_lowering() -> None:
    """The remembered lowering belongs to one tuple: another tuple in between never borrows it."""
    first, second = ("Password",), ("TOKEN",)
    entry = {"password": "p", "token": "t"}
    for _ in range(2):
        assert redact(entry, first) == {"password": REDACTED, "token": "t"}
        assert redact(entry, second) == {"password": "p", "token": REDACTED}
    assert redact(entry, ["PassWord"]) == {"password": REDACTED, "token": "t"}
