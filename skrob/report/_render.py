"""jinja2 rendering: one environment for the page and its sections, every value
HTML-escaped unless it is HTML skrob built (tables, figures, other templates), which is
passed as :class:`markupsafe.Markup`."""

from functools import lru_cache
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def environment():
    """The templates under ``templates/``, with the filters they use: ``g`` (a number
    to 3 significant digits), ``count`` (an integer with thousands separators), and the
    global ``cite(key)`` (a link to a paper in the references list)."""
    try:
        import jinja2
    except ImportError as exc:
        raise ImportError(
            "skrob report renders its page with jinja2: pip install 'skrob[report]' "
            "(or pip install jinja2)."
        ) from exc
    from skrob.report._context import cite

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["g"] = lambda value, digits=3: f"{value:.{digits}g}"
    env.filters["count"] = lambda value: f"{int(value):,}"
    env.globals["cite"] = lambda key: safe(cite(key))
    return env


def render(name, **values):
    """Template ``name`` rendered with ``values``, as markup for another template."""
    return safe(environment().get_template(name).render(**values))


def safe(html):
    """``html`` marked as markup that templates insert as it is."""
    from markupsafe import Markup

    return Markup(html)
