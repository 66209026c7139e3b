"""SaShiMi's SC09 digit classifier, imported into our own implementation.

SaShiMi (state-spaces/s4, ``models/sashimi/sc09_classifier/``) scores SC09 samples with the
ResNeXt of tugstugi/pytorch-speech-commands, released as ``resnext.pth``: a whole
``torch.nn.DataParallel`` wrapping ``models.resnext.CifarResNeXt`` saved with ``torch.save(model)``.
``audiomamba evaluate import-classifier`` reads that pickle with :mod:`~audiomamba.eval.safe_unpickle`
(none of the file's code runs), copies the weights into :class:`SashimiResNeXt` below and writes a
``weights_only`` checkpoint that :func:`audiomamba.eval.classifier.load_classifier` loads.

What the model computes (the facts of their code, re-implemented here):

* input: a 16 kHz clip cropped or zero-padded at the end to exactly 1 s (their ``FixAudioLength``);
* features: ``librosa.feature.melspectrogram`` with librosa's defaults (n_fft 2048 = window,
  hop 512, periodic Hann, centred with reflect padding as in librosa < 0.10, power 2, 32 Slaney
  mel bands over 0–8 kHz with Slaney area normalisation), then ``librosa.power_to_db(S, ref=np.max)``:
  dB relative to the clip's loudest bin, floored at -80 dB; no further normalisation. 1 s gives a
  32 × 32 image (1 + 16000 // 512 = 32 frames);
* network (ResNeXt-29 8×64d, CIFAR layout, 1 input channel): 3×3 conv to 64 channels + BN + ReLU;
  three stages of three bottleneck blocks (1×1 reduce, grouped 3×3 with 8 groups, 1×1 expand,
  each with BN; ReLU after the first two and after the residual sum; 1×1 conv + BN projection when
  the width changes) with widths 256, 512, 1024 (inner widths 512, 1024, 2048) and strides 1, 2, 2;
  an 8 × 8 average pool (the whole 8 × 8 map) → the **1024-d features** (their FID/NDB
  activations: the input of ``classifier``) → ``Linear(1024, 10)`` → logits over
  zero, one, …, nine (the digit order of our classifier).

The same shapes are read from the file, so a differently sized model of the same family imports too.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio
from audiomamba.eval.safe_unpickle import Malformed, Refused, Stub, admitted_globals, read_torch_pickle
from audiomamba.eval.scoring import ScoresClips
from torch import nn

from audiomamba.errors import CheckpointError, ConfigError

SASHIMI_FORMAT = "audiomamba-sashimi-sc09-classifier/1"
CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SOURCE = "state-spaces/s4 models/sashimi/sc09_classifier (resnext.pth: ResNeXt-29 8x64d of tugstugi/pytorch-speech-commands)"

# Module classes a SaShiMi classifier pickle may name, as pickled (module, class); each becomes an
# inert stub. Their training script imports the model package as `models` (models/resnext.py);
# the upstream repository's older scripts imported `resnext` directly.
TORCH_CLASSES = frozenset({
    ("torch.nn.parallel.data_parallel", "DataParallel"),
    ("torch.nn.modules.conv", "Conv2d"),
    ("torch.nn.modules.batchnorm", "BatchNorm2d"),
    ("torch.nn.modules.linear", "Linear"),
    ("torch.nn.modules.container", "Sequential"),
    ("torch.nn.modules.activation", "ReLU"),
})
MODEL_CLASSES = frozenset({
    (module, name) for module in ("models.resnext", "resnext") for name in ("CifarResNeXt", "ResNeXtBottleneck")
})
ALLOWED_CLASSES = TORCH_CLASSES | MODEL_CLASSES


@dataclass(frozen=True)
class SashimiFrontendConfig:
    """Their feature pipeline (stored in the checkpoint)."""

    sample_rate: int = 16000
    clip_samples: int = 16000  # FixAudioLength(time=1): crop, or zero-pad at the end
    n_fft: int = 2048  # librosa.feature.melspectrogram defaults
    win_length: int = 2048
    hop_length: int = 512
    window: str = "hann"  # periodic (scipy fftbins=True), as librosa uses it
    center: bool = True
    pad_mode: str = "reflect"  # librosa < 0.10 (their code calls librosa.load(path, sr) positionally)
    n_mels: int = 32
    f_min: float = 0.0
    f_max: float = 8000.0
    mel_scale: str = "slaney"  # librosa.filters.mel: htk=False, norm="slaney"
    mel_norm: str = "slaney"
    power: float = 2.0
    amin: float = 1e-10  # librosa.power_to_db(S, ref=np.max): amin 1e-10, top_db 80
    top_db: float = 80.0

    @property
    def frames(self) -> int:
        return self.clip_samples // self.hop_length + 1 if self.center else 1 + (self.clip_samples - self.n_fft) // self.hop_length

    @property
    def input_size(self) -> tuple[int, int]:
        """(mel bands, frames) of the network's input image."""
        return (self.n_mels, self.frames)


@dataclass(frozen=True)
class SashimiConfig:
    """Architecture (read from the imported file's tensor shapes) and front end."""

    in_channels: int = 1
    stem: int = 64
    widths: tuple[int, ...] = (256, 512, 1024)
    inner: tuple[int, ...] = (512, 1024, 2048)
    blocks: tuple[int, ...] = (3, 3, 3)
    strides: tuple[int, ...] = (1, 2, 2)
    cardinality: int = 8
    num_classes: int = 10
    bn_eps: float = 1e-5
    pool: int = 8  # their F.avg_pool2d(x, 8, 1): must cover the whole final map
    frontend: SashimiFrontendConfig = field(default_factory=SashimiFrontendConfig)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("widths", "inner", "blocks", "strides"):
            d[k] = list(d[k])
        d["frontend"]["input_size"] = list(self.frontend.input_size)  # informational
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SashimiConfig:
        d = dict(d)
        for k in ("widths", "inner", "blocks", "strides"):
            d[k] = tuple(int(v) for v in d[k])
        fe = {k: v for k, v in dict(d["frontend"]).items() if k != "input_size"}
        d["frontend"] = SashimiFrontendConfig(**fe)
        cfg = cls(**d)
        cfg.check()
        return cfg

    def final_map(self) -> tuple[int, int]:
        """Spatial size of the last stage's output for one clip (3×3 convs, padding 1)."""
        h, w = self.frontend.input_size
        for s in self.strides:
            h, w = (h - 1) // s + 1, (w - 1) // s + 1
        return h, w

    def check(self) -> None:
        n = len(self.widths)
        if not n or not (len(self.inner) == len(self.blocks) == len(self.strides) == n):
            raise ValueError("widths, inner, blocks and strides must have one entry per stage")
        if any(c % self.cardinality for c in self.inner):
            raise ValueError(f"inner widths {self.inner} are not divisible by cardinality {self.cardinality}")
        if self.frontend.window != "hann":
            raise ValueError(f"window {self.frontend.window!r}: only 'hann' is supported")
        if self.final_map() != (self.pool, self.pool):
            raise ValueError(
                f"the final feature map is {self.final_map()} but their {self.pool}x{self.pool} average "
                "pool must cover it exactly (1 s clips, 32 mel bands, strides 1, 2, 2)"
            )


class SashimiMel(nn.Module):
    """(B, T) 16 kHz waveform → (B, 1, n_mels, frames) dB image re each clip's maximum, in [-top_db, 0]."""

    def __init__(self, config: SashimiFrontendConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SashimiFrontendConfig()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length,
            f_min=cfg.f_min, f_max=cfg.f_max, n_mels=cfg.n_mels, window_fn=torch.hann_window, power=cfg.power,
            center=cfg.center, pad_mode=cfg.pad_mode, norm=cfg.mel_norm, mel_scale=cfg.mel_scale,
        )

    def fix_length(self, wave: torch.Tensor) -> torch.Tensor:
        n = self.config.clip_samples
        return wave[:, :n] if wave.shape[1] >= n else F.pad(wave, (0, n - wave.shape[1]))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() != 2:
            raise ValueError(f"SashimiMel expects (batch, samples), got shape {tuple(wave.shape)}")
        cfg = self.config
        wave = self.fix_length(torch.nan_to_num(wave.float(), nan=0.0, posinf=0.0, neginf=0.0))
        power = self.mel(wave)  # (B, M, F)
        ref = power.amax(dim=(1, 2), keepdim=True)
        db = 10.0 * torch.log10(power.clamp_min(cfg.amin)) - 10.0 * torch.log10(ref.clamp_min(cfg.amin))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - cfg.top_db)
        return db.unsqueeze(1)


class GroupedBottleneck(nn.Module):
    """1×1 reduce → grouped 3×3 (stride s) → 1×1 expand, BN after each, ReLU after the first two and
    after adding the skip (a 1×1 conv + BN projection when the width changes)."""

    def __init__(self, c_in: int, c_out: int, inner: int, stride: int, groups: int, eps: float) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(c_in, inner, 1, bias=False)
        self.reduce_bn = nn.BatchNorm2d(inner, eps=eps)
        self.group_conv = nn.Conv2d(inner, inner, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.group_bn = nn.BatchNorm2d(inner, eps=eps)
        self.expand = nn.Conv2d(inner, c_out, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(c_out, eps=eps)
        self.proj_conv: nn.Conv2d | None = None
        self.proj_bn: nn.BatchNorm2d | None = None
        if c_in != c_out:  # as theirs: no projection when only the stride changes
            self.proj_conv = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
            self.proj_bn = nn.BatchNorm2d(c_out, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.reduce_bn(self.reduce(x)))
        h = F.relu(self.group_bn(self.group_conv(h)))
        h = self.expand_bn(self.expand(h))
        skip = x if self.proj_conv is None else self.proj_bn(self.proj_conv(x))
        return F.relu(h + skip)


class SashimiResNeXt(ScoresClips):
    """SaShiMi's SC09 ResNeXt on raw 16 kHz waveforms, with the :class:`DigitClassifier` interface
    (``features_and_probs``, ``features``, ``probs``, ``feature_dim``)."""

    def __init__(self, config: SashimiConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SashimiConfig()
        cfg.check()
        self.frontend = SashimiMel(cfg.frontend)
        self.stem_conv = nn.Conv2d(cfg.in_channels, cfg.stem, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(cfg.stem, eps=cfg.bn_eps)
        stages = []
        c = cfg.stem
        for width, inner, n, stride in zip(cfg.widths, cfg.inner, cfg.blocks, cfg.strides, strict=True):
            blocks = []
            for i in range(n):
                blocks.append(GroupedBottleneck(c, width, inner, stride if i == 0 else 1, cfg.cardinality, cfg.bn_eps))
                c = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(c, cfg.num_classes)

    @property
    def feature_dim(self) -> int:
        return self.head.in_features

    def embed_spec(self, spec: torch.Tensor) -> torch.Tensor:
        """dB image (B, 1, M, F) → pooled features (B, feature_dim) (the 8 × 8 map averaged)."""
        x = F.relu(self.stem_bn(self.stem_conv(spec)))
        for stage in self.stages:
            x = stage(x)
        return x.mean(dim=(2, 3))

    def forward_spec(self, spec: torch.Tensor) -> torch.Tensor:
        """dB image (B, 1, M, F) → logits (B, num_classes)."""
        return self.head(self.embed_spec(spec))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """wave (B, T) → logits (B, num_classes)."""
        return self.forward_spec(self.frontend(wave))


# --- their names → ours -------------------------------------------------------------------------

_BLOCK_PARTS = {
    "conv_reduce": "reduce", "bn_reduce": "reduce_bn", "conv_conv": "group_conv", "bn": "group_bn",
    "conv_expand": "expand", "bn_expand": "expand_bn", "shortcut": "", "shortcut.shortcut_conv": "proj_conv",
    "shortcut.shortcut_bn": "proj_bn",
}
_TOP = {"": "", "conv_1_3x3": "stem_conv", "bn_1": "stem_bn", "classifier": "head"}
_BLOCK = re.compile(r"stage_(\d+)\.stage_\1_bottleneck_(\d+)(?:\.(.+))?")
_STAGE = re.compile(r"stage_(\d+)")


def our_module_name(theirs: str) -> str | None:
    """Their module path (inside DataParallel) → ours; '' for containers with no counterpart; None if unknown."""
    if theirs in _TOP:
        return _TOP[theirs]
    if m := _STAGE.fullmatch(theirs):
        return f"stages.{int(m[1]) - 1}"
    if m := _BLOCK.fullmatch(theirs):
        block = f"stages.{int(m[1]) - 1}.{int(m[2])}"
        if m[3] is None:
            return block
        part = _BLOCK_PARTS.get(m[3])
        return None if part is None else (f"{block}.{part}" if part else "")
    return None


def _walk(obj: Stub, prefix: str, modules: dict[str, Stub], tensors: dict[str, torch.Tensor]) -> None:
    if prefix.count(".") > 12:
        raise Malformed("module tree nested too deeply")
    modules[prefix.rstrip(".")] = obj
    state = obj.state
    for group in ("_parameters", "_buffers", "_modules"):
        items = state.get(group, {})
        if not isinstance(items, dict):
            raise Malformed(f"{obj.pickled_name}.{group} is not a dict")
        for key, value in items.items():
            if value is None:
                continue
            if group == "_modules":
                if not isinstance(value, Stub):
                    raise Malformed(f"submodule {prefix}{key} is a {type(value).__name__}")
                _walk(value, f"{prefix}{key}.", modules, tensors)
            elif isinstance(value, torch.Tensor):
                tensors[f"{prefix}{key}"] = value
            else:
                raise Malformed(f"{prefix}{key} is a {type(value).__name__}, not a tensor")


def _kind(stub: Stub) -> str:
    return stub.pickled_name.rsplit(".", 1)[1]


def _unwrap(obj: object, path: Path) -> tuple[str, dict[str, Stub], dict[str, torch.Tensor]]:
    """The pickled object → (layout description, their modules by path, their tensors by key)."""
    modules: dict[str, Stub] = {}
    tensors: dict[str, torch.Tensor] = {}
    layout = []
    if isinstance(obj, Stub) and _kind(obj) == "DataParallel":
        layout.append(obj.pickled_name)
        obj = obj.state.get("_modules", {}).get("module")
    if isinstance(obj, Stub):
        if _kind(obj) != "CifarResNeXt":
            raise CheckpointError(
                f"{path} holds a pickled {obj.pickled_name}, not SaShiMi's CifarResNeXt: pass their sc09_classifier/resnext.pth"
            )
        layout.append(obj.pickled_name)
        _walk(obj, "", modules, tensors)
        return " > ".join(layout), modules, tensors
    if isinstance(obj, dict):  # their training checkpoints: {"state_dict": DataParallel state dict, ...}
        sd = obj.get("state_dict", obj)
        if isinstance(sd, dict) and sd and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
            tensors = {k.removeprefix("module."): v for k, v in sd.items()}
            return "state dict", modules, tensors
    raise CheckpointError(
        f"{path} holds a {type(obj).__name__}, not a pickled CifarResNeXt or its state dict: pass SaShiMi's sc09_classifier/resnext.pth"
    )


def _tuple2(v: object) -> tuple:
    return tuple(v) if isinstance(v, tuple | list) else (v, v)


def _config_from(tensors: dict[str, torch.Tensor], modules: dict[str, Stub], path: Path) -> SashimiConfig:
    def shape(key: str) -> tuple[int, ...]:
        if key not in tensors:
            raise CheckpointError(f"{path} has no tensor {key}: not SaShiMi's CifarResNeXt layout")
        return tuple(tensors[key].shape)

    stem = shape("conv_1_3x3.weight")
    if len(stem) != 4:
        raise CheckpointError(f"{path}: conv_1_3x3.weight has shape {stem}, not a 2-D conv kernel")
    found: dict[int, set[int]] = {}
    for key in tensors:
        if m := _BLOCK.match(key):
            found.setdefault(int(m[1]), set()).add(int(m[2]))
    if sorted(found) != list(range(1, len(found) + 1)) or not found:
        raise CheckpointError(f"{path}: stages {sorted(found)} are not stage_1 .. stage_N")
    widths, inner, blocks, strides, groups = [], [], [], [], set()
    for s in range(1, len(found) + 1):
        if sorted(found[s]) != list(range(len(found[s]))):
            raise CheckpointError(f"{path}: stage_{s} blocks {sorted(found[s])} are not numbered 0 .. n-1")
        blocks.append(len(found[s]))
        for b in range(blocks[-1]):
            head = f"stage_{s}.stage_{s}_bottleneck_{b}"
            mid, per_group = shape(f"{head}.conv_conv.weight")[:2]
            groups.add(mid // max(per_group, 1))
        head = f"stage_{s}.stage_{s}_bottleneck_0"
        widths.append(shape(f"{head}.conv_expand.weight")[0])
        inner.append(shape(f"{head}.conv_reduce.weight")[0])
        conv = modules.get(f"{head}.conv_conv")
        strides.append(int(_tuple2(conv.state.get("stride", 1))[0]) if conv else (1 if s == 1 else 2))
    if len(groups) != 1:
        raise CheckpointError(f"{path}: grouped convs use different group counts {sorted(groups)}")
    bn = modules.get("bn_1")
    try:
        cfg = SashimiConfig(
            in_channels=stem[1], stem=stem[0], widths=tuple(widths), inner=tuple(inner), blocks=tuple(blocks),
            strides=tuple(strides), cardinality=groups.pop(), num_classes=shape("classifier.weight")[0],
            bn_eps=float(bn.state.get("eps", 1e-5)) if bn else 1e-5,
        )
        cfg.check()
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: unsupported CifarResNeXt variant ({err})") from None
    root = modules.get("")
    if root is not None:  # cross-check CifarResNeXt's own attributes where pickled
        st = root.state
        expect = {"nlabels": cfg.num_classes, "cardinality": cfg.cardinality, "stages": [cfg.stem, *cfg.widths]}
        for key, want in expect.items():
            if key in st and list(_tuple2(st[key])) != list(_tuple2(want)):
                raise CheckpointError(f"{path}: CifarResNeXt.{key} = {st[key]!r} disagrees with its weights ({want!r})")
    return cfg


def _check_layers(modules: dict[str, Stub], model: SashimiResNeXt, path: Path) -> None:
    """Every pickled module maps onto one of ours of the same kind and hyper-parameters."""
    ours = dict(model.named_modules())
    for name, stub in modules.items():
        target = our_module_name(name)
        if target is None:
            raise CheckpointError(f"{path}: unexpected module {name or '<root>'} ({stub.pickled_name}) in the CifarResNeXt")
        kind = _kind(stub)
        if kind not in ("Conv2d", "BatchNorm2d", "Linear"):
            continue
        mine = ours.get(target)
        if type(mine).__name__ != kind:
            raise CheckpointError(f"{path}: {name} is a {kind} where the CifarResNeXt layout has {type(mine).__name__}")
        st = stub.state
        if kind == "Conv2d":
            for attr in ("kernel_size", "stride", "padding", "dilation", "groups"):
                if attr in st and _tuple2(st[attr]) != _tuple2(getattr(mine, attr)):
                    raise CheckpointError(
                        f"{path}: {name}.{attr} = {st[attr]!r} but the CifarResNeXt layout has {getattr(mine, attr)!r}"
                    )
        elif kind == "BatchNorm2d" and "eps" in st and float(st["eps"]) != mine.eps:
            raise CheckpointError(f"{path}: {name}.eps = {st['eps']} differs from the other BatchNorm layers ({mine.eps})")


def _state_dict_from(tensors: dict[str, torch.Tensor], model: SashimiResNeXt, path: Path) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        module, _, leaf = key.rpartition(".")
        target = our_module_name(module)
        if not target:
            raise CheckpointError(f"{path}: unexpected tensor {key} for SaShiMi's CifarResNeXt")
        sd[f"{target}.{leaf}"] = value.detach().float() if value.is_floating_point() else value.detach().long()
    own = model.state_dict()
    for key, value in own.items():  # front-end buffers are ours; BN counters predate torch 0.4.1
        if key.startswith("frontend.") or (key.endswith("num_batches_tracked") and key not in sd):
            sd[key] = value
    return sd


def _load_weights(model: SashimiResNeXt, sd: dict[str, torch.Tensor], path: Path) -> None:
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        reason = " ".join(lines[1:3] if len(lines) > 1 else lines)[:200]
        raise CheckpointError(f"{path}: weights do not fit SaShiMi's CifarResNeXt layout ({reason})") from None
    for name, value in model.state_dict().items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: tensor {name} holds NaN or inf")


def read_sashimi_classifier(path: str | Path) -> tuple[SashimiResNeXt, str]:
    """Read SaShiMi's pickled classifier without running its code → (our model in eval mode, layout).

    Raises ConfigError (one line) when the file names any class outside the admitted set, and
    CheckpointError when it is missing, damaged or not their CifarResNeXt.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"classifier file not found: {path}: download sc09_classifier/resnext.pth of the SaShiMi release")
    try:
        obj = read_torch_pickle(path, ALLOWED_CLASSES)
    except Refused as err:
        raise ConfigError(
            f"{path}: refused to load class {err.qualname}: only the SaShiMi SC09 classifier's classes are admitted "
            f"(models.resnext.CifarResNeXt, ResNeXtBottleneck, torch.nn containers/layers, tensors); nothing from the file was run"
        ) from None
    except Malformed as err:
        raise CheckpointError(f"cannot read {path} as a torch.save file ({err}): the file is corrupt or not SaShiMi's classifier") from None
    except OSError as err:
        raise CheckpointError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        layout, modules, tensors = _unwrap(obj, path)
        cfg = _config_from(tensors, modules, path)
    except Malformed as err:
        raise CheckpointError(f"{path}: malformed model pickle ({err})") from None
    model = SashimiResNeXt(cfg)
    _check_layers(modules, model, path)
    _load_weights(model, _state_dict_from(tensors, model, path), path)
    return model.eval(), layout


def save_sashimi_classifier(model: SashimiResNeXt, path: str | Path, meta: dict | None = None) -> Path:
    """Write ``{"format", "config", "state_dict", "meta"}`` (weights_only-loadable) atomically."""
    from audiomamba.eval.classifier import save_classifier

    return save_classifier(model, path, meta, SASHIMI_FORMAT)


def model_from_payload(payload: dict, path: str | Path, hint: str) -> SashimiResNeXt:
    """A loaded :data:`SASHIMI_FORMAT` checkpoint payload → model (eval mode, CPU)."""
    try:
        model = SashimiResNeXt(SashimiConfig.from_dict(payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise CheckpointError(f"imported classifier checkpoint {path} does not match the model ({reason}): {hint}") from None
    model.meta = dict(payload.get("meta", {}))  # type: ignore[attr-defined]
    return model.eval()


def import_sashimi_classifier(src: str | Path, out: str | Path) -> dict:
    """``audiomamba evaluate import-classifier``: SaShiMi's resnext.pth → our checkpoint at ``out``.

    Returns a summary (layout, parameters, feature size, input size, output path).
    """
    src, out = Path(src), Path(out)
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise ConfigError(f"--out {out} is the input file: write the converted checkpoint elsewhere")
    model, layout = read_sashimi_classifier(src)
    cfg = model.config
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    params = sum(p.numel() for p in model.parameters())
    meta = {
        "imported_from": str(src),
        "source_sha256": digest,
        "source": SOURCE,
        "pickled_layout": layout,
        "labels": list(CLASSES),
        "imported_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "admitted_globals": admitted_globals(ALLOWED_CLASSES),
    }
    save_sashimi_classifier(model, out, meta)
    return {
        "layout": layout, "params": params, "feature_dim": model.feature_dim, "num_classes": cfg.num_classes,
        "input_size": list(cfg.frontend.input_size), "config": cfg.to_dict(), "out": str(out), "sha256": digest,
        "depth": 2 + 3 * sum(cfg.blocks), "cardinality": cfg.cardinality,
    }


__all__ = [
    "ALLOWED_CLASSES", "CLASSES", "SASHIMI_FORMAT", "SashimiConfig", "SashimiFrontendConfig", "SashimiMel",
    "SashimiResNeXt", "import_sashimi_classifier", "model_from_payload", "read_sashimi_classifier",
    "save_sashimi_classifier",
]
