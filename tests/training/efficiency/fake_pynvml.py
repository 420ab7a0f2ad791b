"""A stand-in for ``pynvml`` (nvidia-ml-py), for the sampler and the callback without a GPU."""

from __future__ import annotations

import types

from hf_rerank.training.efficiency.memory import MIB


def fake_pynvml(utilisations, used=3 * MIB, fail_after=None):
    """A stand-in for pynvml: utilisation readings from ``utilisations`` in order (then its last),
    memory ``used`` bytes; readings raise after ``fail_after`` of them."""
    module = types.ModuleType("pynvml")
    module.calls = []
    readings = iter(utilisations)
    state = {"last": utilisations[-1], "count": 0}

    class NVMLError(Exception):
        pass

    def utilization(handle):
        state["count"] += 1
        if fail_after is not None and state["count"] > fail_after:
            raise NVMLError("Not Supported")
        state["last"] = next(readings, state["last"])
        return types.SimpleNamespace(gpu=state["last"], memory=0)

    module.NVMLError = NVMLError
    module.nvmlInit = lambda: module.calls.append("init")
    module.nvmlShutdown = lambda: module.calls.append("shutdown")
    module.nvmlDeviceGetHandleByIndex = lambda index: ("index", index)
    module.nvmlDeviceGetHandleByUUID = lambda uuid: ("uuid", uuid)
    module.nvmlDeviceGetUtilizationRates = utilization
    module.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(used=used, total=80 * 1024 * MIB)
    return module
