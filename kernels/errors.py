"""The op layer's own error: a bad argument, shape or setting of a scan op, in one line (what,
where, how to fix). The CLI prints it like the package's other user errors."""


class KernelError(ValueError):
    """A bad argument or setting of an op in :mod:`audiomamba.kernels`."""
