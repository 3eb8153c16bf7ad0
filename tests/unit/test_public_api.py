"""The public surface: small, sorted, importable, and holding every name the seed uses."""

from __future__ import annotations

import importlib

import pytest

import vigil
import vigil.monitoring

SEED_MONITORING_NAMES = {
    "StructuredLogger", "PerformanceMonitor", "performance_monitor", "monitor_performance",
    "ExecutionTracer", "execution_tracer", "trace_execution", "trace_context", "alert_manager",
}


@pytest.mark.parametrize("module", [vigil, vigil.monitoring])
def test_all_is_sorted_and_resolves(module: object) -> None:
    """__all__ is in sorted() order and every name in it exists."""
    names = module.__all__  # type: ignore[attr-defined]
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(module, name), name


def test_seed_monitoring_names_are_exported() -> None:
    """Every name the seed imports from app.core.monitoring comes from vigil.monitoring."""
    assert set(vigil.monitoring.__all__) >= SEED_MONITORING_NAMES
    assert set(vigil.__all__) >= SEED_MONITORING_NAMES


def test_top_level_reexports_are_the_same_objects() -> None:
    """vigil.X is vigil.monitoring.X, not a copy."""
    for name in SEED_MONITORING_NAMES:
        assert getattr(vigil, name) is getattr(vigil.monitoring, name)


def test_the_exporter_package_resolves_every_name_it_lists_lazily() -> None:
    """vigil_exporter's names come from their modules on first use: __all__ is the lazy table
    plus __version__, each resolves to the defining module's object."""
    import vigil_exporter

    homes = vigil_exporter._HOMES
    assert sorted([*homes, "__version__"]) == vigil_exporter.__all__
    for name, home in homes.items():
        assert getattr(vigil_exporter, name) is getattr(importlib.import_module(home), name)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vigil_exporter.nope  # noqa: B018
