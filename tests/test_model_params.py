"""Gradients reach every parameter; SSM parameters, norms, biases and embeddings are not decayed."""

from __future__ import annotations

import pytest
import torch

from audiomamba.model import BLOCK_NAMES, build_model, param_groups

SMALL = {"d_model": 16, "d_state": 4, "s4_d_state": 8, "attn_head_dim": 8}
NO_DECAY_NAMES = ("A_log", "A_re_log", "A_im", "log_dt", "dt_bias", ".D")


def tiny(name: str):
    return build_model(
        {**SMALL, "pool": [2, 2], "levels": [{"block": name, "n": 1}] * 2, "center": {"block": name, "n": 1}}
    )


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_every_parameter_gets_a_gradient(name: str) -> None:
    torch.manual_seed(0)
    model = tiny(name)
    tokens = torch.randint(0, 256, (2, 16))
    loss = torch.nn.functional.cross_entropy(model(tokens).reshape(-1, 256), tokens.roll(-1, 1).reshape(-1))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_param_groups_exclude_ssm_norm_bias_embedding(name: str) -> None:
    model = tiny(name)
    groups = param_groups(model, 0.1)
    decay = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    no = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert not decay & no
    assert decay | no == {id(p) for p in model.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    for pname, p in model.named_parameters():
        leaf = pname.rsplit(".", 1)[-1]
        expect_no = (
            any(pname.endswith(s) for s in NO_DECAY_NAMES)
            or leaf == "bias"
            or ".norm." in pname
            or pname.startswith(("embedding", "norm"))
        )
        if expect_no:
            assert id(p) in no, f"{pname} is weight-decayed"
        if leaf == "weight" and p.ndim == 2 and ("proj" in pname or "linear" in pname or "qkv" in pname):
            assert id(p) in decay, f"{pname} should be weight-decayed"
    # an AdamW built on the groups runs
    opt = torch.optim.AdamW(groups, lr=1e-3)
    model(torch.zeros(1, 8, dtype=torch.long)).sum().backward()
    opt.step()
