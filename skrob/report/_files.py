"""Nothing the user owns is written over: the report's marker of its own files, and the
staging folder moved into ``-o`` only after every clash is checked."""

from pathlib import Path

MARKER = ".skrob-report"


def _stamp(path):
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _owned(out_dir):
    """The files of ``out_dir`` that skrob wrote and nobody changed since (name, size and
    modification time as its marker recorded them), the marker included; None when the
    folder holds no skrob report."""
    import json

    marker = out_dir / MARKER
    if not marker.is_file():
        return None
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
        owned = {MARKER}
        for name, stamp in files.items():
            path = out_dir / str(name)
            if path.is_file() and _stamp(path) == list(stamp):
                owned.add(str(name))
        return owned
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return None


def check_output(out_dir, force=False):
    """Refuse, before any work, an output folder skrob may not write into: ``out_dir``
    must be a folder or not exist, below a folder; an existing folder that holds files
    must hold a skrob report (its marker), unless ``force``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--output {out_dir} exists and is not a folder.")
    for parent in out_dir.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"--output {out_dir}: {parent} is a file, not a folder.")
            break
    if not out_dir.is_dir() or force:
        return
    present = sorted(p.name for p in out_dir.iterdir())
    if present and _owned(out_dir) is None:
        raise ValueError(
            f"--output {out_dir} exists and holds files skrob did not write "
            f"({', '.join(present[:5])}{', ...' if len(present) > 5 else ''}); skrob never "
            "writes over them. Choose a new folder, or pass --force to write the report "
            "into it anyway (files of the same names are then replaced; the input never)."
        )


def _publish(staging, out_dir, protect, force):
    """Move the staged report files into ``out_dir``. A file there that skrob did not
    write (or that changed since) is replaced only with ``force``; an input file never.
    Every clash is checked before the first file moves."""
    import json
    import os
    import shutil

    owned = _owned(out_dir) or {MARKER}
    names = sorted(p.name for p in staging.iterdir())
    protected = [Path(p) for p in protect if p is not None and Path(p).exists()]
    for name in [*names, MARKER]:
        target = out_dir / name
        if not target.exists():
            continue
        if any(os.path.samefile(target, p) for p in protected):
            raise ValueError(
                f"The report would write {target}, which is the input data file; skrob "
                "never writes over its input. Choose another --output folder."
            )
        if name not in owned and not force:
            raise ValueError(
                f"{target} exists and was not written by skrob (or changed since); it is "
                "left as it is. Choose another --output folder, or pass --force to replace it."
            )
    kept = {}  # earlier report files left in place, unchanged: still skrob's
    if (out_dir / MARKER).is_file():
        try:
            old = json.loads((out_dir / MARKER).read_text(encoding="utf-8"))["files"]
            kept = {n: v for n, v in old.items() if n in owned and n not in names}
        except (ValueError, KeyError, TypeError, AttributeError, OSError):
            kept = {}
    for name in names:
        shutil.move(str(staging / name), str(out_dir / name))
    files = {**kept, **{name: _stamp(out_dir / name) for name in names}}
    (out_dir / MARKER).write_text(
        json.dumps({"written_by": "skrob report", "files": files}, indent=1), encoding="utf-8"
    )
