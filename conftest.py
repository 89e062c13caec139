"""Root pytest configuration: the torch-less mode, and doctests that need torch.

With ``SKROB_TEST_WITHOUT_TORCH`` set, an import hook makes torch and skorch unimportable,
as without the ``[torch]`` extra. Where torch cannot be imported (so, also then), pytest
does not collect the doctests of ``skrob/torch``: collecting them would import torch.
"""

import importlib.util
import os
import sys


class _WithoutTorch:
    """An import hook that makes torch and skorch unimportable, as without the extra."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "skorch"):
            raise ModuleNotFoundError(f"{name} is blocked: SKROB_TEST_WITHOUT_TORCH is set")
        return None


if os.environ.get("SKROB_TEST_WITHOUT_TORCH"):
    sys.meta_path.insert(0, _WithoutTorch())

try:
    _HAS_TORCH = importlib.util.find_spec("torch") is not None
except ModuleNotFoundError:  # blocked by the hook above
    _HAS_TORCH = False

collect_ignore_glob = [] if _HAS_TORCH else ["skrob/torch/*"]
