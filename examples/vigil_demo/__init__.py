"""vigil's demo application, a package of its own beside the library and the exporter.

:mod:`vigil_demo.agent_studio` is a simulated local AI agent studio instrumented only through
vigil's public API: the workload ``vigil demo`` runs (``vigil_exporter.demo_runner`` starts the
exporter and the local stack around it) and the worked example of using vigil. It ships in the
same distribution so ``vigil demo`` works from an installed wheel, but nothing in ``vigil`` or
``vigil_exporter`` imports it except the ``vigil demo`` command, when it runs.
"""

from vigil_demo.agent_studio import AgentStudioDemo, DemoSummary

__all__ = ["AgentStudioDemo", "DemoSummary"]
