"""ResNeXt-style digit classifier for the SC09 sample metrics (docs/ARCHITECTURE.md §9).

waveform (B, T) → :class:`~eval.features.LogMel` (B, 1, M, F) → stem conv (stride 2) →
stages of grouped-conv bottleneck residual blocks (ResNeXt) → global average pool →
**features** (B, width[-1]) → dropout → Linear → logits (B, 10).

``features`` (penultimate layer) feeds FID and NDB; ``probs`` feeds IS, mIS and AM.
The checkpoint is a plain dict ``{"format", "config", "state_dict", "meta"}`` written atomically
and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from audiomamba.eval.features import LogMel, LogMelConfig
from audiomamba.eval.sashimi_classifier import SASHIMI_FORMAT, SashimiResNeXt, model_from_payload
from audiomamba.eval.scoring import ScoresClips
from torch import nn

from audiomamba.errors import CheckpointError

CHECKPOINT_FORMAT = "audiomamba-sc09-classifier/1"
ENSEMBLE_FORMAT = "audiomamba-sc09-classifier-ensemble/1"  # eval.ensemble: several of these heard as one
NUM_CLASSES = 10


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture of the classifier (stored in the checkpoint)."""

    stem: int = 32
    widths: tuple[int, ...] = (64, 128, 256)
    blocks: tuple[int, ...] = (1, 1, 1)
    cardinality: int = 8
    bottleneck: float = 0.5
    dropout: float = 0.2
    num_classes: int = NUM_CLASSES
    logmel: LogMelConfig = field(default_factory=LogMelConfig)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"], d["blocks"] = list(self.widths), list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        d = dict(d)
        d["widths"], d["blocks"] = tuple(d["widths"]), tuple(d["blocks"])
        d["logmel"] = LogMelConfig(**{"mu_law": False, **d["logmel"]})  # files from before mu_law heard PCM
        return cls(**d)


MODEL_PRESETS: dict[str, ClassifierConfig] = {
    "small": ClassifierConfig(),  # 137 k parameters
    "wide": ClassifierConfig(stem=48, widths=(96, 192, 384), blocks=(1, 2, 1)),  # 353 k
    # 982 k parameters; a training step on the CPU takes about 1.5x wide's (1 thread, batch 64)
    "xl": ClassifierConfig(stem=64, widths=(128, 256, 512), blocks=(2, 2, 2)),
    # 2.39 M parameters: 1.5x xl's widths and a third block at the middle width (issue 17's "a larger model if it
    # pays"); meant for the GPU (`--device cuda`), where a fold costs minutes, not the CPU's hour
    "xxl": ClassifierConfig(stem=96, widths=(192, 384, 768), blocks=(2, 3, 2)),
}


class ResNeXtBlock(nn.Module):
    """Bottleneck residual block: 1×1 → grouped 3×3 (stride s) → 1×1, BN + ReLU, projected skip.

    (B, c_in, H, W) → (B, c_out, ceil(H/s), ceil(W/s)).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, cardinality: int, bottleneck: float) -> None:
        super().__init__()
        mid = max(cardinality, int(round(c_out * bottleneck / cardinality)) * cardinality)
        self.conv1 = nn.Conv2d(c_in, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        nn.init.zeros_(self.bn3.weight)  # each block starts as the identity on its skip path
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + self.skip(x))


class DigitClassifier(ScoresClips):
    """SC09 digit classifier on raw 16 kHz waveforms (any length; 16000 samples in practice)."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ClassifierConfig()
        self.frontend = LogMel(cfg.logmel)
        self.stem = nn.Sequential(
            nn.Conv2d(1, cfg.stem, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cfg.stem), nn.ReLU()
        )
        layers: list[nn.Module] = []
        c = cfg.stem
        for width, n in zip(cfg.widths, cfg.blocks, strict=True):
            for i in range(n):
                layers.append(ResNeXtBlock(c, width, 2 if i == 0 else 1, cfg.cardinality, cfg.bottleneck))
                c = width
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(c, cfg.num_classes)

    @property
    def feature_dim(self) -> int:
        return self.head.in_features

    def embed_spec(self, spec: torch.Tensor) -> torch.Tensor:
        """Log-mel image (B, 1, M, F) → penultimate features (B, feature_dim)."""
        return self.body(self.stem(spec)).mean(dim=(2, 3))

    def forward_spec(self, spec: torch.Tensor) -> torch.Tensor:
        """Log-mel image (B, 1, M, F) → logits (B, num_classes)."""
        return self.head(self.dropout(self.embed_spec(spec)))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """wave (B, T) → logits (B, num_classes)."""
        return self.forward_spec(self.frontend(wave))


def save_classifier(model: nn.Module, path: str | Path, meta: dict | None = None,
                    fmt: str = CHECKPOINT_FORMAT) -> Path:
    """Write ``{"format", "config", "state_dict", "meta"}`` atomically (temp file, then rename).
    ``model`` has a ``config`` with ``to_dict()``; ``fmt`` names the architecture for the loader."""
    return save_payload({
        "format": fmt,
        "config": model.config.to_dict(),
        "state_dict": cpu_state(model),
        "meta": dict(meta or {}),
    }, path)


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict, detached, on the CPU (what a checkpoint stores)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def classifier_from_state(config: dict, state_dict: dict) -> DigitClassifier:
    """A :class:`DigitClassifier` built from a stored config dict and loaded with ``state_dict``
    (raises KeyError / TypeError / ValueError / RuntimeError when they do not fit)."""
    model = DigitClassifier(ClassifierConfig.from_dict(config))
    model.load_state_dict(state_dict)
    return model


def save_payload(payload: dict, path: str | Path) -> Path:
    """``torch.save`` of a checkpoint dict, atomically: a temp file beside ``path``, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> DigitClassifier | SashimiResNeXt:
    """Load a classifier checkpoint (weights_only) in eval mode; raises a one-line CheckpointError.

    Also loads SaShiMi's classifier as converted by ``audiomamba evaluate import-classifier``
    (:class:`~audiomamba.eval.sashimi_classifier.SashimiResNeXt`) and ensembles written by
    ``audiomamba evaluate ensemble-classifier`` (:class:`~audiomamba.eval.ensemble.ClassifierEnsemble`),
    both with the same scoring interface."""
    path = Path(path)
    hint = "train one with `audiomamba evaluate train-classifier SC09_DIR --out CKPT`"
    if not path.is_file():
        raise CheckpointError(f"classifier checkpoint not found: {path}: {hint}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - truncated zip, pickle error, …
        reason = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise CheckpointError(f"cannot read classifier checkpoint {path} ({reason}): the file is corrupt; {hint}") from None
    if isinstance(payload, dict) and payload.get("format") == SASHIMI_FORMAT:
        return model_from_payload(payload, path, hint).to(device).eval()
    if isinstance(payload, dict) and payload.get("format") == ENSEMBLE_FORMAT:
        from audiomamba.eval.ensemble import ensemble_from_payload

        return ensemble_from_payload(payload, path, hint).to(device).eval()
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not an SC09 classifier checkpoint (format {CHECKPOINT_FORMAT!r} expected): {hint}"
        )
    try:
        model = classifier_from_state(payload["config"], payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise CheckpointError(f"classifier checkpoint {path} does not match the model ({reason}): {hint}") from None
    model.meta = dict(payload.get("meta", {}))  # type: ignore[attr-defined]
    return model.to(device).eval()


def one_second(waves) -> torch.Tensor:
    """waves (n, T) array or tensor -> (n, 16000) float32: cropped or zero-padded to 1 s at 16 kHz."""
    x = torch.as_tensor(waves, dtype=torch.float32)
    return x[:, :16000] if x.shape[1] >= 16000 else torch.nn.functional.pad(x, (0, 16000 - x.shape[1]))


def digit_labeller(classifier: str | Path | DigitClassifier | SashimiResNeXt, device: str | torch.device = "cpu"):
    """A labeller for generated samples: ``waves (n, T) array -> (digit (n,), probability (n,))``
    numpy arrays, from a loaded classifier or its checkpoint (clips cropped/padded to 1 s)."""
    model = classifier if isinstance(classifier, nn.Module) else load_classifier(classifier, device)

    def label(waves) -> tuple:
        x = one_second(waves)
        probs = model.probs(x)
        p, d = probs.max(dim=-1)
        return d.numpy(), p.numpy()

    return label
