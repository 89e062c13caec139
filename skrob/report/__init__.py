"""``skrob report``: an HTML page with tables and PNG plots about a labelled dataset.

Each capability adds a section: a function ``(context) -> Section``
(:mod:`~skrob.report._sections`). Sections share the loaded data through
:class:`ReportContext` (:mod:`~skrob.report._context`); the first,
:func:`overview_section`, gives the verdict a reader sees first. The user's table is read
by :func:`load_table` (:mod:`~skrob.report._table`); the page is rendered by jinja2 from
``templates/page.html`` (:mod:`~skrob.report._page`); nothing the user owns is written
over (:mod:`~skrob.report._files`). The command line is :mod:`skrob.__main__`.
"""

from skrob.report._context import (
    PAPERS,
    ReportContext,
    Section,
    SectionSkipped,
    cite,
    significant,
    standardise,
)
from skrob.report._files import MARKER, check_output
from skrob.report._page import write_report
from skrob.report._sections import (
    SECTIONS,
    distortion_section,
    overview_section,
    robust_subsets_section,
    rpr_section,
    sample_robustness_section,
)
from skrob.report._table import Table, load_table

__all__ = [
    "MARKER",
    "PAPERS",
    "SECTIONS",
    "ReportContext",
    "Section",
    "SectionSkipped",
    "Table",
    "check_output",
    "cite",
    "distortion_section",
    "load_table",
    "overview_section",
    "robust_subsets_section",
    "rpr_section",
    "sample_robustness_section",
    "significant",
    "standardise",
    "write_report",
]
