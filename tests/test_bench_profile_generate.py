"""``python -m audiomamba.bench.profile_generate``: the state traffic it reports, and its kernel table (CPU parts)."""

from __future__ import annotations

import torch
from audiomamba.bench.generate import preset_with_block
from audiomamba.bench.profile_generate import kernel_table, main, state_bytes_per_step

from audiomamba.model import build_model


def test_state_bytes_weight_each_level_by_its_rate():
    """sc09-small (pools 4, 4): 16 mamba-s6 blocks of 128 channels at full rate, 16 of 256 at 1/4, 8 of 512 at 1/16,
    each an SSM state (channels, 16) and a conv state (channels, 3), plus the four pooling buffers; read and written."""
    model = build_model(preset_with_block("sc09-small", "mamba-s6"))
    per_row = (16 * 128 + 16 * 256 / 4 + 8 * 512 / 16) * (16 + 3) + (2 * 4 * 64 + 2 * 4 * 128 / 4)
    assert state_bytes_per_step(model, 3) == 2 * 4 * 3 * per_row
    # float16 step states (a GPU batch's default): the Mamba states at 2 bytes, the pooling buffers still at 4
    mamba_row = (16 * 128 + 16 * 256 / 4 + 8 * 512 / 16) * (16 + 3)
    assert state_bytes_per_step(model, 3, torch.float16) == 2 * 3 * (2 * mamba_row + 4 * (per_row - mamba_row))


def test_kernel_table_sums_device_time_per_step():
    class Ev:
        def __init__(self, name, us, cuda=True):
            self.name, self.device_time = name, us
            self.device_type = torch.autograd.DeviceType.CUDA if cuda else torch.autograd.DeviceType.CPU

    class Prof:
        def events(self):
            return [Ev("a", 10.0), Ev("b", 30.0), Ev("a", 10.0), Ev("cpu op", 99.0, cuda=False)]

    assert kernel_table(Prof(), 2) == [("b", 0.5, 15.0), ("a", 1.0, 10.0)]


def test_main_says_it_needs_a_gpu(capsys):
    if torch.cuda.is_available():
        return
    assert main([]) == 2
    assert "needs a CUDA device" in capsys.readouterr().out
