"""Rich progress bar for training: step, loss, BPB, validation BPB, samples/s and ETA."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from audiomamba.tokenizer import bits_per_sample


class TrainProgress:
    """A context manager wrapping :class:`rich.progress.Progress`; a no-op when ``enabled`` is False."""

    def __init__(self, total: int, start: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self.fields = {"loss": "-", "bpb": "-", "val": "-", "rate": "-", "audio": "-"}
        self._progress: Progress | None = None
        self._task = None
        self.total, self.start = total, start

    def __enter__(self) -> TrainProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  BPB {task.fields[bpb]}  val {task.fields[val]}"),
                TextColumn("{task.fields[rate]} seq/s ({task.fields[audio]} audio samples/s)"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("train", total=self.total, completed=self.start, **self.fields)
        return self

    def update(
        self,
        step: int,
        loss: float | None = None,
        samples_per_s: float | None = None,
        val_bpb: float | None = None,
        audio_rate: float | None = None,
    ) -> None:
        """Move to ``step``; update the shown loss/BPB, sequences per second, audio samples per second."""
        if not self.enabled or self._progress is None:
            return
        if loss is not None:
            self.fields["loss"] = f"{loss:.4f}"
            self.fields["bpb"] = f"{bits_per_sample(loss):.4f}"
        if samples_per_s is not None:
            self.fields["rate"] = f"{samples_per_s:.1f}"
        if audio_rate is not None:
            self.fields["audio"] = f"{audio_rate / 1000:.1f}k" if audio_rate < 1e6 else f"{audio_rate / 1e6:.2f}M"
        if val_bpb is not None:
            self.fields["val"] = f"{val_bpb:.4f}"
        self._progress.update(self._task, completed=step, **self.fields)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)  # type: ignore[arg-type]
