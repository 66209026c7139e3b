"""Checkpoint files: the packed format (one byte buffer for every tensor) and reading format 1."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

from audiomamba.errors import CheckpointError
from audiomamba.train.checkpoint import (
    CHECKPOINT_FORMAT,
    PACKED,
    capture_rng,
    load_checkpoint,
    pack_tensors,
    restore_rng,
    save_checkpoint,
    unpack_tensors,
)


def _state() -> dict:
    g = torch.Generator().manual_seed(0)
    model = {"a.weight": torch.randn(3, 5, generator=g), "a.bias": torch.randn(5, generator=g).to(torch.bfloat16),
             "b.A": torch.randn(2, 4, dtype=torch.complex64, generator=g), "b.mask": torch.tensor([True, False, True]),
             "b.empty": torch.zeros(0, 7), "b.scalar": torch.tensor(2.5, dtype=torch.float64)}
    moments = {i: {"step": torch.tensor(float(i + 1)), "exp_avg": torch.randn(4, 3, generator=g).t()}  # not contiguous
               for i in range(3)}
    moments[3] = {}  # an empty dict among them is kept (packing leaves dicts of only tensors empty)
    return {"format": 1, "step": 7, "recipe": {"train": {"lr": 1e-3}}, "model_config": {"d_model": 4},
            "model": model, "ema": {k: v.clone() for k, v in model.items()},
            "optimizer": {"state": moments, "param_groups": [{"params": [0, 1, 2], "betas": (0.9, 0.95)}]},
            "rng": {"python": {"version": 3, "state": torch.arange(5), "gauss": None}, "cuda": [torch.ones(2)]},
            "metrics": {"best_val_bpb": None}, "pair": (torch.ones(1), 2)}


def _assert_same(a, b) -> None:
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)  # the keys in their order (a state_dict's order is its modules')
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


def test_packed_tensors_come_back_equal_in_their_places_and_order():
    state = _state()
    packed = pack_tensors(state)
    assert packed["format"] == CHECKPOINT_FORMAT and isinstance(packed[PACKED]["bytes"], torch.Tensor)
    assert packed["model"] == {}  # only tensors below: left empty
    assert packed["optimizer"]["state"] == {0: {}, 1: {}, 2: {}, 3: {}}  # not left empty: 3 was empty before
    assert packed["rng"]["python"]["state"] is None and packed["rng"]["python"]["version"] == 3
    assert isinstance(packed["pair"][0], torch.Tensor)  # tuples are left as they are (torch.save writes them)
    _assert_same({**state, "format": CHECKPOINT_FORMAT}, unpack_tensors(packed))
    assert state["format"] == 1 and isinstance(state["model"]["a.weight"], torch.Tensor)  # the original untouched


def test_a_saved_checkpoint_is_one_buffer_and_loads_mapped_or_not(tmp_path):
    state = _state()
    path = save_checkpoint(tmp_path / "last.pt", state)
    with zipfile.ZipFile(path) as z:
        records = [n for n in z.namelist() if "/data/" in n and not n.endswith(".pkl")]
    assert len(records) == 2  # the buffer, the tuple's tensor: not one per tensor
    for mmap in (False, True):
        loaded = load_checkpoint(path, mmap=mmap)
        assert loaded.pop("path") == str(path)
        _assert_same({**state, "format": CHECKPOINT_FORMAT}, loaded)
    # unmapped, each in its own storage: writing one (an optimizer step on a loaded moment) leaves the rest alone
    loaded = load_checkpoint(path)
    loaded["optimizer"]["state"][0]["exp_avg"].add_(1.0)
    _assert_same(state["optimizer"]["state"][1], loaded["optimizer"]["state"][1])


def test_format_1_files_still_load(tmp_path):
    state = _state()
    torch.save(state, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt", mmap=True)
    loaded.pop("path")
    _assert_same(state, loaded)


def test_a_bad_index_or_format_is_a_one_line_error(tmp_path):
    packed = pack_tensors(_state())
    index = json.loads(packed[PACKED]["index"])
    index[0][3] = packed[PACKED]["bytes"].numel()  # past the buffer
    torch.save({**packed, PACKED: {**packed[PACKED], "index": json.dumps(index)}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="corrupt or unreadable checkpoint .*past the buffer") as err:
        load_checkpoint(tmp_path / "bad.pt")
    assert "\n" not in str(err.value)
    torch.save({**_state(), "format": 99}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="format 99, this version reads 1 and 2"):
        load_checkpoint(tmp_path / "new.pt")


@pytest.mark.parametrize("mmap", [False, True])
def test_rng_states_restore_from_a_packed_checkpoint(tmp_path, mmap):
    torch.manual_seed(3)
    path = save_checkpoint(tmp_path / "last.pt", {**_state(), "rng": capture_rng()})
    want = torch.rand(4)
    torch.manual_seed(4)
    restore_rng(load_checkpoint(path, mmap=mmap)["rng"])  # a view at an offset once crashed set_rng_state
    assert torch.equal(torch.rand(4), want)
