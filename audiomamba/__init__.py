"""audiomamba: autoregressive modelling of raw audio with state-space models.

Data path: waveform -> mu-law tokens (:mod:`audiomamba.tokenizer`) -> U-Net
(:mod:`audiomamba.model`) -> blocks -> SSM layer -> :func:`kernels.selective_scan` -> logits.
"""

__version__ = "0.1.0"
