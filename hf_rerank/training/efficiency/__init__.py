"""Training efficiency, measured the same way in every run (all per process, i.e. per device under DDP).

One module per job:

- :mod:`.counts`: samples, sequences, real and padded tokens of a batch (``count_batch``);
- :mod:`.flops`: the model FLOPs of a forward and backward pass (``TransformerFlops``);
- :mod:`.peak`: a matmul rate measured on the device for the dtype in use (``measure_matmul_peak``),
  the denominator of MFU;
- :mod:`.device`: the device measured: its canonical ``torch.device``, synchronisation, its name;
- :mod:`.memory`: optimizer-state bytes and the process's peak resident memory;
- :mod:`.sampler`: a thread reading resident memory and, through NVML, GPU utilisation and memory
  (``UsageSampler``);
- :mod:`.callback`: ``EfficiencyCallback``, which times every optimizer step and turns all of the
  above into ``eff_*`` log rates and the run's summary (``metrics.json``'s ``"efficiency"``);
- :mod:`.mixin`: how a ``transformers.Trainer`` takes part (``EfficiencyTrainerMixin`` and the
  ``efficiency_metrics`` training argument).

The package imports only torch, transformers, numpy and psutil (and, on CUDA, ``pynvml`` if
installed), so ``benchmarks/gpu_check.py`` can use it on a machine without hf-rerank's other
dependencies. It exports nothing itself: import from its modules.
"""
