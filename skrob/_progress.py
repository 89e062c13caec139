"""Progress bars for the calls that can run for minutes: ``verbose >= 1`` shows one.

One tqdm bar per call, on stderr; with ``verbose=0`` the bar is disabled and costs
nothing. The exact kernels' block bars live in :mod:`skrob._search.blocks`.
"""


def progress_bar(verbose, total, desc, unit="it", iterable=None):
    """A tqdm bar over ``total`` units (or over ``iterable``) when ``verbose`` is positive,
    else a silent one."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable, total=total, desc=desc, unit=unit, disable=not verbose, dynamic_ncols=True
    )
