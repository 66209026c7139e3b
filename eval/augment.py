"""Cheap batched augmentations for classifier training.

Waveform domain (B, T): speed perturbation (resampling by a random factor, which moves pitch,
formants and tempo together), a random smooth equaliser (microphone colour), random time shift
(zero-filled, not circular), random gain, coloured background noise (white … brown) at a random
SNR, additive white noise at a random absolute level, and a pitch shift that keeps formants and
tempo (phase vocoder over a cepstral source-filter split). Spectrogram domain (B, 1, M, F): a random
tempo change (speaking rate; pitch kept), a random warp of the frequency axis (VTLP-style
vocal-tract-length perturbation: formants move, tempo does not), SpecAugment-style frequency and
time masks, and mixup of pairs of clips (soft labels). All draw from an explicit
``torch.Generator`` so runs are repeatable; an augmentation that is switched off draws nothing,
so the original ("basic") recipe's random stream is unchanged.

:data:`AUGMENT_PRESETS` names the recipes: ``basic`` (the original one), ``robust`` (for
speakers not seen in training; see RESULTS.md, leave-one-speaker-out) and ``robust-wide``
(``robust`` with speed and warp ranges of 0.85-1.15, meant for more epochs) and ``robust-floor``
(``robust`` plus a recording noise floor under 4 kHz over the clip's extent) and ``robust-pitch``
(``robust`` plus the pitch shift).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch


@dataclass(frozen=True)
class AugmentConfig:
    max_shift_left: int = 800  # samples (50 ms)
    max_shift_right: int = 3200  # samples (200 ms)
    gain_db: tuple[float, float] = (-12.0, 6.0)
    noise_prob: float = 0.5
    noise_log10_std: tuple[float, float] = (-4.5, -2.5)
    freq_mask: int = 8  # bins
    time_mask: int = 12  # frames
    mask_prob: float = 0.5
    # Added for speaker robustness; all off by default (= the original recipe).
    speed_prob: float = 0.0
    speed: tuple[float, float] = (0.85, 1.15)  # resampling factor (> 1: faster and higher)
    colored_noise_prob: float = 0.0
    snr_db: tuple[float, float] = (5.0, 30.0)  # against the clip's power where it is not silent
    noise_color: tuple[float, float] = (0.0, 2.0)  # spectral slope beta of 1/f**beta (0 white, 1 pink, 2 brown)
    tempo_prob: float = 0.0
    tempo: tuple[float, float] = (0.7, 1.4)  # log-uniform time-axis stretch of the log-mel (> 1: faster), pitch kept
    warp_prob: float = 0.0
    warp: tuple[float, float] = (0.9, 1.1)  # frequency-axis factor of the log-mel (VTLP)
    pitch_prob: float = 0.0
    pitch: tuple[float, float] = (0.85, 1.18)  # F0 factor (about -3 to +3 semitones); formants and tempo kept
    eq_prob: float = 0.0
    eq_db: float = 6.0  # random smooth equaliser (microphone / room colour): +-eq_db/k dB on cos(k pi f/Nyquist)
    eq_terms: int = 4  # k = 1 … eq_terms
    masks: int = 1  # frequency and time masks per clip
    mixup_prob: float = 0.0
    mixup_min: float = 0.5  # mixing weight of the clip's own label ~ U(mixup_min, 1)
    # A recording's own noise floor: stationary noise under floor_band_hz (sc09-fsdd: 8 kHz originals,
    # so 4 kHz) over the clip's recorded extent only, not over the zero padding. One held-out voice
    # (nicolas, 20 dB from loudest frame to floor against 25-37 dB for the others) is mostly misheard
    # where its fricatives sink into that floor.
    floor_noise_prob: float = 0.0
    floor_snr_db: tuple[float, float] = (5.0, 25.0)
    floor_band_hz: float = 4000.0

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


AUGMENT_PRESETS: dict[str, AugmentConfig] = {
    "basic": AugmentConfig(),
    # Chosen on leave-one-speaker-out folds (RESULTS.md): mild speed / formant / channel changes and
    # mixup helped; a wide tempo range, a strong equaliser and heavier masking did not.
    "robust": AugmentConfig(
        speed_prob=0.5, speed=(0.9, 1.1),
        warp_prob=0.5, warp=(0.9, 1.1),
        eq_prob=0.5, eq_db=6.0,
        colored_noise_prob=0.3, snr_db=(5.0, 30.0),
        mixup_prob=0.5, mixup_min=0.5,
    ),
}
# robust with wider speed and formant ranges (0.85-1.15), meant for more epochs (e.g. 45): in short
# trials (15-20 epochs, small model) heavier ranges underfit.
AUGMENT_PRESETS["robust-wide"] = replace(AUGMENT_PRESETS["robust"], speed=(0.85, 1.15), warp=(0.85, 1.15))
# robust plus a band-limited noise floor over the recorded extent (add_floor_noise), for voices recorded
# with more background noise than the training voices.
AUGMENT_PRESETS["robust-floor"] = replace(AUGMENT_PRESETS["robust"], floor_noise_prob=0.5)
# robust plus a pitch shift that keeps formants and tempo (pitch_shift): another voice's F0 on the same
# vocal tract, which speed (all three move) and warp (formants only) do not give.
AUGMENT_PRESETS["robust-pitch"] = replace(AUGMENT_PRESETS["robust"], pitch_prob=0.5)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def time_shift(wave: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift each clip by ``shift[b]`` samples (positive = later), filling with zeros. (B, T) → (B, T)."""
    b, t = wave.shape
    src = torch.arange(t).unsqueeze(0) - shift.unsqueeze(1)  # (B, T) source index
    valid = (src >= 0) & (src < t)
    return torch.where(valid, wave.gather(1, src.clamp(0, t - 1)), torch.zeros((), dtype=wave.dtype))


def speed_perturb(wave: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Resample each clip by ``factor[b]`` (linear interpolation; > 1 plays faster and higher),
    keeping the start and cropping / zero-padding back to T samples. (B, T) → (B, T).

    Linear interpolation without an anti-alias filter is enough for digits band-limited well below
    Nyquist / 1.15 (FSDD: 4 kHz; Speech Commands: little energy above 6 kHz).
    """
    b, t = wave.shape
    pos = torch.arange(t, dtype=torch.float32, device=wave.device).unsqueeze(0) * factor.to(wave.device).float().unsqueeze(1)
    i0 = pos.floor().long()
    frac = (pos - i0).to(wave.dtype)
    x0 = wave.gather(1, i0.clamp(0, t - 1))
    x1 = wave.gather(1, (i0 + 1).clamp(0, t - 1))
    out = x0 + frac * (x1 - x0)
    return torch.where(i0 < t - 1, out, torch.zeros((), dtype=wave.dtype))


def _read_bins(x: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """x (B, F, N) read at fractional frequency bins src (B, F), each in [0, F - 1] (linear interpolation)."""
    b, f, n = x.shape
    i0 = src.floor().long().clamp(0, f - 1)
    i1 = (i0 + 1).clamp(max=f - 1)
    frac = (src - i0).unsqueeze(2).to(x.dtype)
    x0 = x.gather(1, i0.unsqueeze(2).expand(b, f, n))
    return x0 + frac * (x.gather(1, i1.unsqueeze(2).expand(b, f, n)) - x0)


def pitch_shift(wave: torch.Tensor, factor: torch.Tensor, n_fft: int = 1024, hop: int = 128,
                lifter: int = 30) -> torch.Tensor:
    """Multiply each clip's pitch by ``factor[b]``, keeping its formants and tempo. (B, T) → (B, T).

    A source-filter split of the STFT log-magnitude: the spectral envelope (formants) is its cepstrum
    below ``lifter`` samples of quefrency (1.9 ms at 16 kHz, under any voice's pitch period); the rest
    (harmonics) is read at bin k / factor, so harmonic h of F0 lands at h F0 factor under the same
    envelope. Phases follow the phase vocoder: each output bin advances per hop by factor times the
    measured instantaneous frequency of the bin it reads, so the frames stay coherent and the tempo
    is unchanged. Each clip's power is kept.
    """
    b, t = wave.shape
    factor = factor.to(wave.device).float()
    win = torch.hann_window(n_fft, device=wave.device)
    spec = torch.stft(wave.float(), n_fft, hop, window=win, return_complex=True)  # (B, F, N)
    f = spec.shape[1]
    logm = spec.abs().clamp_min(1e-7).log()
    q = torch.arange(n_fft, device=wave.device)
    lift = ((q < lifter) | (q > n_fft - lifter)).float().view(1, -1, 1)
    env = torch.fft.rfft(torch.fft.irfft(logm, n=n_fft, dim=1) * lift, dim=1).real
    bins = torch.arange(f, device=wave.device, dtype=torch.float32)
    src = bins.unsqueeze(0) / factor.unsqueeze(1)  # (B, F)
    inside = (src <= f - 1).unsqueeze(2)
    src = src.clamp(max=f - 1)
    fine = torch.where(inside, _read_bins(logm - env, src), torch.full((), -30.0, device=wave.device))
    phase = spec.angle()
    omega = (2 * math.pi * hop / n_fft) * bins.view(1, f, 1)  # a bin centre's phase advance per hop
    dev = phase[..., 1:] - phase[..., :-1] - omega
    advance = omega + dev - 2 * math.pi * torch.round(dev / (2 * math.pi))  # (B, F, N - 1)
    start = _read_bins(phase[..., :1], src)
    out_phase = torch.cat([start, start + (_read_bins(advance, src) * factor.view(b, 1, 1)).cumsum(2)], 2)
    out = torch.istft(torch.polar((env + fine).exp(), out_phase), n_fft, hop, window=win, length=t)
    power_in, power_out = wave.float().pow(2).mean(1, keepdim=True), out.pow(2).mean(1, keepdim=True)
    return (out * (power_in / power_out.clamp_min(1e-20)).sqrt()).to(wave.dtype)


def colored_noise(b: int, t: int, beta: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, T) noise of unit power with a 1/f**beta[b] power spectrum (beta 0 white, 1 pink, 2 brown)."""
    spec = torch.fft.rfft(torch.randn(b, t, generator=gen), dim=1)
    f = torch.arange(spec.shape[1], dtype=torch.float32).clamp_min(1.0)
    spec = spec * f.unsqueeze(0) ** (-beta.unsqueeze(1) / 2)
    x = torch.fft.irfft(spec, n=t, dim=1)
    return x / x.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-12)


def add_noise_snr(wave: torch.Tensor, snr_db: torch.Tensor, beta: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Add coloured noise at ``snr_db[b]`` below the clip's power over its non-silent samples."""
    b, t = wave.shape
    active = (wave.abs() > 1e-4).sum(dim=1).clamp_min(1)
    power = wave.pow(2).sum(dim=1) / active
    scale = (power / 10.0 ** (snr_db / 10.0)).sqrt()
    return wave + scale.unsqueeze(1) * colored_noise(b, t, beta, gen)


def add_floor_noise(wave: torch.Tensor, snr_db: torch.Tensor, beta: torch.Tensor, band_hz: float,
                    gen: torch.Generator, sample_rate: int = 16000) -> torch.Tensor:
    """Add a recording noise floor: coloured noise low-passed at ``band_hz``, ``snr_db[b]`` below the
    clip's active power, over the clip's extent (first to last sample above 1e-4) and not the padding."""
    b, t = wave.shape
    noise = colored_noise(b, t, beta, gen)
    spec = torch.fft.rfft(noise, dim=1)
    keep = torch.fft.rfftfreq(t, 1.0 / sample_rate) <= band_hz
    noise = torch.fft.irfft(spec * keep, n=t, dim=1)
    noise = noise / noise.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
    loud = wave.abs() > 1e-4
    idx = torch.arange(t).expand(b, t)
    first = torch.where(loud, idx, t).amin(dim=1, keepdim=True)
    last = torch.where(loud, idx, -1).amax(dim=1, keepdim=True)
    extent = (idx >= first) & (idx <= last)
    power = wave.pow(2).sum(dim=1) / loud.sum(dim=1).clamp_min(1)
    scale = (power / 10.0 ** (snr_db / 10.0)).sqrt()
    return wave + scale.unsqueeze(1) * noise * extent


def random_eq(wave: torch.Tensor, db: torch.Tensor) -> torch.Tensor:
    """Filter each clip by a smooth gain curve ``sum_k db[b, k-1] * cos(k pi f / Nyquist)`` dB (zero phase).
    (B, T), db (B, K) → (B, T)."""
    b, t = wave.shape
    spec = torch.fft.rfft(wave, dim=1)
    f = torch.linspace(0.0, 1.0, spec.shape[1])
    k = torch.arange(1, db.shape[1] + 1, dtype=torch.float32)
    curve = (db.unsqueeze(2) * torch.cos(torch.pi * k.view(1, -1, 1) * f.view(1, 1, -1))).sum(1)  # (B, F) dB
    return torch.fft.irfft(spec * 10.0 ** (curve / 20.0), n=t, dim=1)


def augment_wave(wave: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """(B, T) CPU waveforms → augmented (B, T): speed, shift, gain, noise; clipped to [-1, 1]."""
    b, _ = wave.shape
    out = wave
    if cfg.speed_prob > 0:
        factor = _uniform(b, *cfg.speed, gen)
        factor = torch.where(torch.rand(b, generator=gen) < cfg.speed_prob, factor, torch.ones(()))
        out = speed_perturb(out, factor)
    if cfg.pitch_prob > 0:
        factor = _uniform(b, *cfg.pitch, gen)
        chosen = (torch.rand(b, generator=gen) < cfg.pitch_prob).nonzero().view(-1)
        if chosen.numel():
            out = out.clone()
            out[chosen] = pitch_shift(out[chosen], factor[chosen])
    if cfg.eq_prob > 0:
        k = torch.arange(1, cfg.eq_terms + 1, dtype=torch.float32)
        db = (2 * torch.rand(b, cfg.eq_terms, generator=gen) - 1) * cfg.eq_db / k
        db = torch.where((torch.rand(b, generator=gen) < cfg.eq_prob).unsqueeze(1), db, torch.zeros(()))
        out = random_eq(out, db)
    if cfg.floor_noise_prob > 0:
        snr = _uniform(b, *cfg.floor_snr_db, gen)
        snr = torch.where(torch.rand(b, generator=gen) < cfg.floor_noise_prob, snr, torch.full((), math.inf))
        out = add_floor_noise(out, snr, _uniform(b, *cfg.noise_color, gen), cfg.floor_band_hz, gen)
    shift = torch.randint(-cfg.max_shift_left, cfg.max_shift_right + 1, (b,), generator=gen)
    out = time_shift(out, shift)
    gain = 10.0 ** (_uniform(b, *cfg.gain_db, gen) / 20.0)
    out = out * gain.unsqueeze(1)
    if cfg.colored_noise_prob > 0:
        snr = _uniform(b, *cfg.snr_db, gen)
        snr = torch.where(torch.rand(b, generator=gen) < cfg.colored_noise_prob, snr, torch.full((), math.inf))
        out = add_noise_snr(out, snr, _uniform(b, *cfg.noise_color, gen), gen)
    std = 10.0 ** _uniform(b, *cfg.noise_log10_std, gen)
    std = torch.where(torch.rand(b, generator=gen) < cfg.noise_prob, std, torch.zeros(()))
    out = out + std.unsqueeze(1) * torch.randn(out.shape, generator=gen)
    return out.clamp(-1.0, 1.0)


def _hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def warp_freq(spec: torch.Tensor, alpha: torch.Tensor, f_min: float, f_max: float) -> torch.Tensor:
    """Warp the frequency axis of a log-mel image (B, 1, M, F) (HTK mel bands over f_min…f_max):
    the output band at frequency f takes the input at f / alpha[b] (alpha > 1 moves formants up).
    Bands read from beyond the top are set to the floor (-1). → (B, 1, M, F)."""
    b, _, m, f = spec.shape
    lo, hi = _hz_to_mel(torch.tensor(f_min)), _hz_to_mel(torch.tensor(f_max))
    step = (hi - lo) / (m + 1)
    centres = _mel_to_hz(lo + step * torch.arange(1, m + 1))  # (M,) Hz
    src = (_hz_to_mel(centres.unsqueeze(0) / alpha.float().unsqueeze(1)) - lo) / step - 1.0  # (B, M)
    i0 = src.floor().long()
    frac = (src - i0).to(spec.device, spec.dtype).view(b, 1, m, 1)
    inside = (src <= m - 1).to(spec.device).view(b, 1, m, 1)
    i0c, i1c = i0.clamp(0, m - 1), (i0 + 1).clamp(0, m - 1)
    idx0 = i0c.to(spec.device).view(b, 1, m, 1).expand(b, 1, m, f)
    idx1 = i1c.to(spec.device).view(b, 1, m, 1).expand(b, 1, m, f)
    out = spec.gather(2, idx0) * (1 - frac) + spec.gather(2, idx1) * frac
    return torch.where(inside, out, torch.full((), -1.0, device=spec.device, dtype=spec.dtype))


def stretch_time(spec: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """Change the tempo of log-mel images (B, 1, M, F) without touching pitch: output frame j reads
    input frame j * rate[b] (linear interpolation; > 1 plays faster), holding the last frame
    beyond the end. → (B, 1, M, F)."""
    b, _, m, f = spec.shape
    pos = (torch.arange(f, dtype=torch.float32).unsqueeze(0) * rate.float().unsqueeze(1)).clamp(max=f - 1)  # (B, F)
    i0 = pos.floor().long()
    frac = (pos - i0).to(spec.device, spec.dtype).view(b, 1, 1, f)
    idx0 = i0.to(spec.device).view(b, 1, 1, f).expand(b, 1, m, f)
    idx1 = (i0 + 1).clamp(max=f - 1).to(spec.device).view(b, 1, 1, f).expand(b, 1, m, f)
    return spec.gather(3, idx0) * (1 - frac) + spec.gather(3, idx1) * frac


def augment_spec(
    spec: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator, f_min: float = 20.0, f_max: float = 8000.0
) -> torch.Tensor:
    """Spectrogram-domain augmentation (B, 1, M, F) → (B, 1, M, F): optional tempo change and
    frequency warp, then masks."""
    if cfg.tempo_prob > 0:
        b = spec.shape[0]
        lo, hi = math.log(cfg.tempo[0]), math.log(cfg.tempo[1])
        rate = torch.exp(_uniform(b, lo, hi, gen))
        rate = torch.where(torch.rand(b, generator=gen) < cfg.tempo_prob, rate, torch.ones(()))
        spec = stretch_time(spec, rate)
    if cfg.warp_prob > 0:
        b = spec.shape[0]
        alpha = _uniform(b, *cfg.warp, gen)
        alpha = torch.where(torch.rand(b, generator=gen) < cfg.warp_prob, alpha, torch.ones(()))
        spec = warp_freq(spec, alpha, f_min, f_max)
    return mask_spec(spec, cfg, gen)


def mask_spec(spec: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, M, F) log-mel in [-1, 0] → ``cfg.masks`` frequency bands and time spans set to the floor (-1)."""
    b, _, m, f = spec.shape
    apply = (torch.rand(b, generator=gen) < cfg.mask_prob).view(b, 1, 1, 1)
    mi = torch.arange(m).view(1, m)
    ti = torch.arange(f).view(1, f)
    mask = torch.zeros(b, 1, m, f, dtype=torch.bool)
    for _ in range(cfg.masks):
        fw = torch.randint(0, cfg.freq_mask + 1, (b,), generator=gen)
        f0 = (torch.rand(b, generator=gen) * (m - fw)).long()
        tw = torch.randint(0, cfg.time_mask + 1, (b,), generator=gen)
        t0 = (torch.rand(b, generator=gen) * (f - tw)).long()
        fmask = (mi >= f0[:, None]) & (mi < (f0 + fw)[:, None])  # (B, M)
        tmask = (ti >= t0[:, None]) & (ti < (t0 + tw)[:, None])  # (B, F)
        mask = mask | (fmask[:, :, None] | tmask[:, None, :]).unsqueeze(1)
    mask = mask & apply  # (B, 1, M, F), built on CPU
    return torch.where(mask.to(spec.device), torch.full((), -1.0, device=spec.device), spec)


def mixup(
    spec: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator,
    pairing: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix a random ``mixup_prob`` share of the batch with a partner clip:
    (B, 1, M, F) → (mixed spec, partner index (B,), own-label weight lam (B,)); lam = 1 where unmixed.
    The loss is ``lam * CE(y) + (1 - lam) * CE(y[partner])``. ``pairing`` = (partner, lam) of an earlier
    call mixes a second view of the same batch the same way (no draws)."""
    b = spec.shape[0]
    if pairing is not None:
        partner, lam = pairing
    else:
        partner = torch.randperm(b, generator=gen)
        lam = _uniform(b, cfg.mixup_min, 1.0, gen)
        lam = torch.where(torch.rand(b, generator=gen) < cfg.mixup_prob, lam, torch.ones(()))
    lam_d = lam.to(spec.device, spec.dtype).view(b, 1, 1, 1)
    mixed = lam_d * spec + (1 - lam_d) * spec[partner.to(spec.device)]
    return mixed, partner, lam
