"""`audiomamba evaluate import-classifier`: SaShiMi's pickled SC09 ResNeXt → our checkpoint.

The released file is a whole ``torch.nn.DataParallel(models.resnext.CifarResNeXt)`` saved with
``torch.save(model)``. These tests write files in that layout from a small stand-in with the same
module/class names and attribute names (registered as ``models.resnext`` in ``sys.modules`` only
while saving), then check the import against the model that wrote them, and that any other class
in the pickle is refused without running anything.
"""

from __future__ import annotations

import os
import sys
import types
import warnings
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from audiomamba.eval.classifier import digit_labeller, load_classifier
from audiomamba.eval.sashimi_classifier import (
    SASHIMI_FORMAT,
    SashimiMel,
    SashimiResNeXt,
    read_sashimi_classifier,
)
from audiomamba.eval.synthetic import tone_clip, write_tone_sc09
from torch import nn

from audiomamba.cli import main
from audiomamba.errors import CheckpointError, ConfigError

# --- a stand-in for their models/resnext.py (same names, same computation, small sizes) ---------


class ResNeXtBottleneck(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, cardinality: int, base_width: int, widen_factor: int) -> None:
        super().__init__()
        d = cardinality * int(base_width * c_out / (widen_factor * 64.0))
        self.conv_reduce = nn.Conv2d(c_in, d, 1, bias=False)
        self.bn_reduce = nn.BatchNorm2d(d)
        self.conv_conv = nn.Conv2d(d, d, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn = nn.BatchNorm2d(d)
        self.conv_expand = nn.Conv2d(d, c_out, 1, bias=False)
        self.bn_expand = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if c_in != c_out:
            self.shortcut.add_module("shortcut_conv", nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False))
            self.shortcut.add_module("shortcut_bn", nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn_reduce(self.conv_reduce(x)))
        y = F.relu(self.bn(self.conv_conv(y)))
        y = self.bn_expand(self.conv_expand(y))
        return F.relu(self.shortcut(x) + y)


class CifarResNeXt(nn.Module):
    def __init__(self, nlabels: int = 10, cardinality: int = 2, depth: int = 20, base_width: int = 4,
                 widen_factor: int = 1, in_channels: int = 1) -> None:
        super().__init__()
        self.cardinality, self.depth, self.block_depth = cardinality, depth, (depth - 2) // 9
        self.base_width, self.widen_factor, self.nlabels, self.output_size = base_width, widen_factor, nlabels, 64
        self.stages = [64, 64 * widen_factor, 128 * widen_factor, 256 * widen_factor]
        self.conv_1_3x3 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn_1 = nn.BatchNorm2d(64)
        for i, stride in enumerate((1, 2, 2), start=1):
            stage = nn.Sequential()
            for b in range(self.block_depth):
                c_in = self.stages[i - 1] if b == 0 else self.stages[i]
                stage.add_module(f"stage_{i}_bottleneck_{b}", ResNeXtBottleneck(
                    c_in, self.stages[i], stride if b == 0 else 1, cardinality, base_width, widen_factor))
            setattr(self, f"stage_{i}", stage)
        self.classifier = nn.Linear(self.stages[3], nlabels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn_1(self.conv_1_3x3(x)))
        x = self.stage_3(self.stage_2(self.stage_1(x)))
        return self.classifier(F.avg_pool2d(x, 8, 1).view(-1, self.stages[3]))


class Mystery(nn.Module):
    """A class their package never had."""


class Armed:
    """Unpickling this calls ``fn(*args)`` (what a plain torch.load would do)."""

    def __init__(self, fn, *args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


for _cls in (ResNeXtBottleneck, CifarResNeXt, Mystery):
    _cls.__module__ = "models.resnext"


def _their_model(seed: int = 0) -> CifarResNeXt:
    torch.manual_seed(seed)
    model = CifarResNeXt()
    with torch.no_grad():  # non-trivial BatchNorm statistics and affine terms
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.num_batches_tracked.fill_(1234)
    return model.eval()


def _wrap(model: nn.Module) -> nn.DataParallel:
    """DataParallel as trained on one GPU (the attributes it pickles there)."""
    dp = nn.DataParallel(model)
    dp.dim, dp.device_ids, dp.output_device, dp.src_device_obj = 0, [0], 0, torch.device("cuda", 0)
    return dp


def _save(obj: object, path: Path, legacy: bool = False) -> Path:
    pkg, mod = types.ModuleType("models"), types.ModuleType("models.resnext")
    pkg.resnext = mod
    for cls in (ResNeXtBottleneck, CifarResNeXt, Mystery):
        setattr(mod, cls.__name__, cls)
    saved = {k: sys.modules.get(k) for k in ("models", "models.resnext")}
    sys.modules.update({"models": pkg, "models.resnext": mod})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy format warns that it cannot find the source
            torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return path


def _their_features(waves: np.ndarray) -> torch.Tensor:
    """Their pipeline: FixAudioLength(1 s) → librosa melspectrogram (32 mels, librosa < 0.10's
    reflect padding) → power_to_db(ref=np.max) → (B, 1, 32, 32)."""
    out = []
    for w in waves:
        w = w[:16000] if len(w) >= 16000 else np.pad(w, (0, 16000 - len(w)))
        s = librosa.feature.melspectrogram(y=w.astype(np.float32), sr=16000, n_mels=32, pad_mode="reflect")
        out.append(librosa.power_to_db(s, ref=np.max))
    return torch.from_numpy(np.stack(out)).float().unsqueeze(1)


def _waves(n: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clips = [tone_clip(d % 10, rng) for d in range(n)]
    clips[0] = np.zeros(12000, np.float32)  # silence (and a short clip)
    clips[1] = (0.3 * rng.standard_normal(17000)).astype(np.float32)  # longer than 1 s: cropped
    return np.stack([np.pad(c, (0, 17000 - len(c))) for c in clips])


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CifarResNeXt]:
    path = tmp_path_factory.mktemp("sashimi") / "resnext.pth"
    model = _their_model()
    _save(_wrap(model), path)
    return path, model


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_imported_logits_equal_the_pickled_model(tmp_path: Path, legacy: bool) -> None:
    theirs = _their_model(seed=1)
    src = _save(_wrap(theirs), tmp_path / "resnext.pth", legacy=legacy)
    ours, layout = read_sashimi_classifier(src)
    assert layout == "torch.nn.parallel.data_parallel.DataParallel > models.resnext.CifarResNeXt"
    cfg = ours.config
    assert (cfg.stem, cfg.widths, cfg.inner, cfg.blocks, cfg.strides, cfg.cardinality) == (
        64, (64, 128, 256), (8, 16, 32), (2, 2, 2), (1, 2, 2), 2)
    assert ours.feature_dim == 256 and ours.stages[0][0].proj_conv is None  # stage 1 keeps its width
    spec = torch.randn(5, 1, 32, 32) * 20 - 40
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_spec(spec), theirs(spec), atol=1e-5, rtol=1e-5)
        hooked = {}
        theirs.classifier.register_forward_hook(lambda m, i, o: hooked.setdefault("f", i[0]))
        theirs(spec)
        torch.testing.assert_close(ours.embed_spec(spec), hooked["f"], atol=1e-5, rtol=1e-5)  # FID features


def test_features_match_their_pipeline_end_to_end(released: tuple[Path, CifarResNeXt]) -> None:
    src, theirs = released
    ours, _ = read_sashimi_classifier(src)
    waves = _waves()
    ref = _their_features(waves)
    mine = SashimiMel()(torch.from_numpy(waves))
    assert mine.shape == ref.shape == (6, 1, 32, 32)
    assert torch.all(mine[0] == 0)  # silence: 0 dB everywhere, as power_to_db(ref=np.max)
    torch.testing.assert_close(mine, ref, atol=2e-3, rtol=0)  # dB
    with torch.no_grad():
        torch.testing.assert_close(ours(torch.from_numpy(waves)), theirs(ref), atol=1e-3, rtol=1e-3)


def test_checkpoint_loads_weights_only_and_scores_like_our_classifier(
    released: tuple[Path, CifarResNeXt], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, theirs = released
    out = tmp_path / "ckpt" / "sashimi-sc09.pt"
    main(["evaluate", "import-classifier", str(src), "--out", str(out)])
    said = capsys.readouterr().out
    assert "models.resnext.CifarResNeXt" in said and "256-d features" in said and str(out) in said
    payload = torch.load(out, weights_only=True)
    assert payload["format"] == SASHIMI_FORMAT and payload["config"]["frontend"]["input_size"] == [32, 32]
    assert payload["meta"]["labels"][0] == "zero" and len(payload["meta"]["source_sha256"]) == 64
    model = load_classifier(out)
    assert isinstance(model, SashimiResNeXt) and not model.training
    waves = torch.from_numpy(_waves(7, seed=3))
    feats, probs = model.features_and_probs(waves, batch_size=3)
    assert feats.shape == (7, 256) and probs.shape == (7, 10)
    torch.testing.assert_close(probs.sum(1), torch.ones(7))
    with torch.no_grad():
        torch.testing.assert_close(probs, torch.softmax(theirs(_their_features(waves.numpy())), -1), atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(model.features(waves), feats)
    digits, p = digit_labeller(model)(waves.numpy())
    assert digits.shape == (7,) and np.allclose(p, probs.max(1).values.numpy())


def test_imported_classifier_drives_evaluate_samples(released: tuple[Path, CifarResNeXt], tmp_path: Path) -> None:
    from audiomamba.eval.report import evaluate_samples

    root = write_tone_sc09(tmp_path / "sc09", train=3, validation=1, test=1, seed=0)
    out = tmp_path / "sashimi.pt"
    main(["evaluate", "import-classifier", str(released[0]), "--out", str(out)])
    report = evaluate_samples(None, out, root, split="test", ndb_bins=5, device="cpu", progress=False)
    rows = report["rows"]
    assert set(rows) == {"test (reference)", "train (reference)"}
    assert rows["train (reference)"]["count"] == 30 and np.isfinite(rows["test (reference)"]["IS"])


def test_their_training_checkpoint_state_dict_imports_too(released: tuple[Path, CifarResNeXt], tmp_path: Path) -> None:
    _, theirs = released
    dp = _wrap(theirs)
    ckpt = {"epoch": 3, "step": 10, "state_dict": dp.state_dict(), "loss": 0.1, "accuracy": torch.tensor(0.9),
            "optimizer": torch.optim.SGD(dp.parameters(), lr=0.1, momentum=0.9).state_dict()}
    src = _save(ckpt, tmp_path / "best-acc.pth")
    ours, layout = read_sashimi_classifier(src)
    assert layout == "state dict"
    spec = torch.randn(2, 1, 32, 32) * 20 - 40
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_spec(spec), theirs(spec), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("payload", ["os.system", "builtins.exec", "unknown class"])
def test_any_other_class_is_refused_and_nothing_runs(tmp_path: Path, payload: str, legacy: bool) -> None:
    marker = tmp_path / "ran"
    model = _their_model()
    if payload == "os.system":
        model.extra = Armed(os.system, f"touch {marker}")
        named = r"(os|posix)\.system"
    elif payload == "builtins.exec":
        model.extra = Armed(exec, f"open({str(marker)!r}, 'w').close()")
        named = r"builtins\.exec"
    else:
        model.stage_2.add_module("stage_2_bottleneck_9", Mystery())
        named = r"models\.resnext\.Mystery"
    src = _save(_wrap(model), tmp_path / "evil.pth", legacy=legacy)
    assert not marker.exists()
    with pytest.raises(ConfigError, match=rf"evil\.pth: refused to load class {named}: only the SaShiMi SC09 classifier's classes are admitted") as ex:
        read_sashimi_classifier(src)
    assert "\n" not in str(ex.value)
    assert not marker.exists()


def test_cli_refusal_and_bad_files_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    model = _their_model()
    model.extra = Armed(os.system, f"touch {marker}")
    src = _save(_wrap(model), tmp_path / "evil.pth")
    out = tmp_path / "out.pt"

    def error(argv: list[str]) -> str:
        with pytest.raises(SystemExit) as ex:
            main(argv)
        assert ex.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
        return err

    assert "refused to load class" in error(["evaluate", "import-classifier", str(src), "--out", str(out)])
    assert not marker.exists() and not out.exists()
    assert "not found" in error(["evaluate", "import-classifier", str(tmp_path / "missing.pth"), "--out", str(out)])
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x02not really a pickle")
    assert "corrupt" in error(["evaluate", "import-classifier", str(junk), "--out", str(out)])
    scripted = tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, its archives still exist
        torch.jit.save(torch.jit.script(nn.Linear(2, 2)), scripted)
    assert "TorchScript" in error(["evaluate", "import-classifier", str(scripted), "--out", str(out)])
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    assert "conv_1_3x3.weight" in error(["evaluate", "import-classifier", str(other), "--out", str(out)])
    assert not out.exists()


def test_mismatched_layer_hyperparameters_are_refused(tmp_path: Path) -> None:
    model = _their_model()
    model.stage_2.stage_2_bottleneck_0.conv_conv.dilation = (2, 2)  # not their computation any more
    src = _save(_wrap(model), tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=r"conv_conv\.dilation"):
        read_sashimi_classifier(src)
