"""Shared by the benchmark scripts: peak memory of a code block, and device synchronization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

__all__ = ["PeakMemory", "sync"]


class PeakMemory:
    """Peak memory of a code block: RSS high-water mark (CPU) or CUDA max allocated."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mib = float("nan")

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:  # reset the process's peak RSS (Linux >= 4.0)
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_mib = int(line.split()[1]) / 1024
        except OSError:
            import resource

            self.peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


