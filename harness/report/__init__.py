"""Reports: one exporter interface (``export``), and the run's, the comparison's and the load's formats.

``harness.report.write_reports`` writes a run's folder; ``harness.report.compare.write_compare_reports`` and
``harness.report.load.write_load_reports`` the other two (imported from their modules: they depend on the
comparison and load packages, which themselves write run reports).
"""

from harness.report.export import Exporter, export, write_atomically
from harness.report.run import RUN_EXPORTERS, write_reports

__all__ = ["RUN_EXPORTERS", "Exporter", "export", "write_atomically", "write_reports"]
