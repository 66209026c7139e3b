"""mu-law tokenizer: exactness against torchaudio, hand-computed minmax values, round trips, properties."""

from __future__ import annotations

import math

import pytest
import torch
import torchaudio.functional as AF
from hypothesis import given, settings
from hypothesis import strategies as st

from audiomamba.errors import ConfigError
from audiomamba.tokenizer import (
    MU,
    Q_ZERO,
    bits_per_sample,
    linear_decode,
    linear_encode,
    minmax_scale,
    mu_law_compand,
    mu_law_decode,
    mu_law_encode,
    shift_right,
    unigram_entropy_bits,
)


def test_none_matches_torchaudio_on_random_input() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(50_000, generator=gen) * 2 - 1
    assert torch.equal(mu_law_encode(x, "none"), AF.mu_law_encoding(x, 256))


def test_none_decode_matches_torchaudio() -> None:
    tokens = torch.arange(256)
    assert torch.allclose(mu_law_decode(tokens), AF.mu_law_decoding(tokens, 256), atol=1e-6)


def test_minmax_hand_computed_values() -> None:
    # clip [-2, 0, 2, 1]: minmax -> [-1, 0, 1, 0.5]; e(0.5) = log1p(127.5)/log1p(255)
    e_half = math.log1p(255 * 0.5) / math.log1p(255)
    expected_half = math.floor((e_half + 1) / 2 * 255.99 + 0.005)
    tokens = mu_law_encode(torch.tensor([-2.0, 0.0, 2.0, 1.0]), "minmax")
    assert tokens.tolist() == [0, 128, 255, expected_half]
    assert expected_half == 240  # e = ln(128.5)/ln(256) = 0.87569; (e + 1)/2 * 255.99 + 0.005 = 240.09


def test_minmax_scales_each_clip_independently() -> None:
    clips = torch.stack([torch.linspace(-0.1, 0.1, 11), torch.linspace(-5, 5, 11)])
    tokens = mu_law_encode(clips, "minmax")
    assert torch.equal(tokens[0], tokens[1])
    assert tokens[0, 0] == 0 and tokens[0, -1] == 255 and tokens[0, 5] == Q_ZERO


def test_constant_clip_maps_to_zero_level() -> None:
    assert (mu_law_encode(torch.full((10,), 0.3), "minmax") == Q_ZERO).all()
    assert torch.equal(minmax_scale(torch.full((4,), 2.0)), torch.zeros(4))


def test_zero_level_and_silence() -> None:
    assert mu_law_encode(torch.zeros(3), "none").tolist() == [Q_ZERO] * 3
    assert abs(float(mu_law_decode(torch.tensor(Q_ZERO)))) < 1e-4


@pytest.mark.parametrize(("norm", "steps"), [("minmax", 1.0), ("none", 0.5)])
def test_round_trip_error_bound(norm: str, steps: float) -> None:
    # In the companded domain the error is at most one quantisation step (2/255) for the floor-based
    # SaShiMi mapping and half a step for the rounding of standard mu-law.
    x = torch.linspace(-1, 1, 20001, dtype=torch.float64)
    y = mu_law_decode(mu_law_encode(x, norm)).double()
    step = 2 / MU
    assert ((mu_law_compand(y) - mu_law_compand(x)).abs() <= steps * step + 1e-6).all()
    # ... hence in the waveform domain by the slope of the expansion, (1 + 255|x|) ln(256) / 255
    slope = (1 + MU * torch.maximum(x.abs(), y.abs())) * math.log(256) / MU
    assert ((y - x).abs() <= slope * steps * step + 1e-6).all()


def test_out_of_range_is_clipped_for_none() -> None:
    assert mu_law_encode(torch.tensor([-3.0, 3.0]), "none").tolist() == [0, 255]


def test_linear_quantizer() -> None:
    x = torch.linspace(-1, 1, 1001)
    t = linear_encode(x)
    assert t.min() == 0 and t.max() == 255
    assert (linear_decode(t) - x).abs().max() <= 1 / MU + 1e-6


def test_shift_right_and_bpb() -> None:
    t = torch.tensor([[5, 6, 7], [1, 2, 3]])
    assert shift_right(t).tolist() == [[Q_ZERO, 5, 6], [Q_ZERO, 1, 2]]
    assert bits_per_sample(math.log(256)) == pytest.approx(8.0)
    assert unigram_entropy_bits(torch.arange(256)) == pytest.approx(8.0)
    assert unigram_entropy_bits(torch.zeros(100, dtype=torch.long)) == pytest.approx(0.0)


def test_unknown_normalization_is_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown normalization"):
        mu_law_encode(torch.zeros(2), "minmix")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=2, max_size=64))
def test_properties_monotone_and_in_range(values: list[float]) -> None:
    x = torch.tensor(sorted(values), dtype=torch.float64)
    for norm in ("minmax", "none"):
        t = mu_law_encode(x, norm)
        assert t.min() >= 0 and t.max() <= 255
        assert (t[1:] >= t[:-1]).all(), "encoding must be monotone non-decreasing"
    # decode is strictly increasing over tokens
    d = mu_law_decode(torch.arange(256))
    assert (d[1:] > d[:-1]).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 255))
def test_property_decode_encode_is_identity_on_tokens(token: int) -> None:
    t = torch.tensor([token])
    assert mu_law_encode(mu_law_decode(t), "none").item() == token


def test_decode_table_equals_the_expansion() -> None:
    """mu_law_decode is a lookup in 256 levels: the same float32 values as expanding in float64."""
    from audiomamba.tokenizer import MU, mu_law_expand

    tokens = torch.arange(256).repeat(3, 2)
    want = mu_law_expand(tokens.to(torch.float64) / MU * 2 - 1).to(torch.float32)
    got = mu_law_decode(tokens)
    assert got.dtype == torch.float32 and got.shape == tokens.shape and torch.equal(got, want)
    assert torch.equal(mu_law_decode(tokens.to(torch.int32)), want)
