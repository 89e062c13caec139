"""The page: every section run, then rendered through the jinja2 template
``templates/page.html`` with its style sheet ``templates/style.css``
(:mod:`~skrob.report._render`)."""

import html
import re
import sys
from pathlib import Path

import numpy as np

from skrob.report._context import PAPERS, Section, SectionSkipped, _text
from skrob.report._files import _publish, check_output
from skrob.report._render import TEMPLATES, environment, render
from skrob.report._sections import SECTIONS


def write_report(ctx, sections=SECTIONS, *, protect=(), force=False):
    """Run every section and write ``index.html`` with its PNGs and ``diagnosis.csv`` into
    ``ctx.out_dir``; return the page's path and the summary dict.

    Nothing is written over a file skrob did not write (a marker file lists a report's
    own files) unless ``force``, and never over a file in ``protect`` (the input data):
    the report is built in a staging folder first and moved in only after those checks.
    """
    import shutil
    import tempfile

    out_dir = Path(ctx.out_dir)
    check_output(out_dir, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".skrob-staging-", dir=out_dir))
    ctx.out_dir = staging
    try:
        path, summary = _write_sections(ctx, sections)
        ctx.out_dir = out_dir
        _publish(staging, out_dir, protect, force)
    finally:
        ctx.out_dir = out_dir
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir / path.name, summary


def _write_sections(ctx, sections):
    import matplotlib
    from tqdm.auto import tqdm

    matplotlib.use("Agg")
    done = []
    bar = tqdm(
        sections, desc="skrob report", unit="section", disable=not ctx.progress, file=sys.stderr
    )
    for position, section in enumerate(bar):
        bar.set_postfix_str(section.__name__.removesuffix("_section"))
        title = (section.__doc__ or section.__name__).split(":")[0].strip()
        try:
            done.append(section(ctx))
        except SectionSkipped as exc:
            done.append(Section(title, render("skipped.html", reason=str(exc))))
        except (ValueError, ArithmeticError) as exc:
            if position == 0:  # the verdict: without it there is no report
                raise
            # a default model that cannot take these data (raw values near 1e300, ...):
            # the other sections still stand; the page and the terminal say why
            reason = f"{type(exc).__name__}: {exc}"
            if ctx.scale == "none":
                reason += " (the features are unscaled: --scale standard may help)"
            print(f"skrob report: section {title!r} not computed: {reason}", file=sys.stderr)
            done.append(Section(title, render("skipped.html", reason=reason)))
    bar.close()
    n_labels = int(np.unique(ctx.y, axis=0).shape[0])
    summary = {
        "dataset": ctx.dataset_name,
        "samples": ctx.X.shape[0],
        "features": ctx.X.shape[1],
        "task": ctx.task,
        "classes" if ctx.task == "classification" else "distinct targets": n_labels,
        "metric": ctx.metric,
        "feature scaling": "standardised" if ctx.scale == "standard" else "none",
    }
    for s in done:
        summary.update(s.summary)
    from skrob import __version__

    page = (
        environment()
        .get_template("page.html")
        .render(
            title=ctx.dataset_name,
            meta=(
                f"{ctx.X.shape[0]:,} samples, {ctx.X.shape[1]:,} features, {ctx.task}; "
                f"written by skrob {__version__}."
            ),
            css=(TEMPLATES / "style.css").read_text(encoding="utf-8"),
            verdict=done[0],
            sections=done[1:],
            nav=[(s.anchor, html.unescape(_strip_tags(s.title))) for s in done if s.anchor],
            summary=[(str(k), _text(v)) for k, v in summary.items()],
            papers=[(key, text, url) for key, (text, url) in PAPERS.items()],
        )
    )
    path = ctx.out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path, summary


def _strip_tags(text):

    return re.sub(r"<[^>]+>", "", text).strip()
