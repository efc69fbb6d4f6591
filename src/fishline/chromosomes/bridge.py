"""The Brownian bridge of BBDM (Li et al. 2023), maths only: DAPI crop -> painted crop.

The bridge runs from the target x0 (a painted chromosome crop, all channels) at t = 0 to
the condition y (its DAPI channel repeated to the same channel count) at t = T:

    x_t = (1 - m_t) x0 + m_t y + sqrt(delta_t) eps,   delta_t = 2 s (m_t - m_t^2),

with m_t linear from ``m_min`` to ``m_max`` over T steps. The network sees
concat(x_t, y) and t and predicts, by objective, ``grad`` = x_t - x0 (the default),
``noise`` = eps or ``ysubx`` = y - x0. Sampling starts at x_T = y and walks a step list
with the DDIM-style update of the notes; with eta = 1 one step is the exact posterior
q(x_s | x_t, x0_hat), and eta scales the noise while keeping the marginal variance.

The training loss of one batch is :func:`bbdm_loss`; training and sampling stages that read
and write files are in :mod:`fishline.chromosomes.bbdm`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fishline.errors import InputError
from fishline.schema import default

OBJECTIVES = ("grad", "noise", "ysubx")


@dataclass(frozen=True)
class Bridge:
    """The Brownian-bridge schedule: m_t and delta_t for t = 0 .. T-1 (float64).

    Parameters
    ----------
    timesteps : int, optional
        T, the number of time steps; default: the schema's ``chromosomes.bbdm.timesteps``.
    m_min : float, optional
        m_0; default: the first value of the schema's ``chromosomes.bbdm.m_range``.
    m_max : float, optional
        m_{T-1}; default: the second value of the schema's ``chromosomes.bbdm.m_range``.
    max_var : float, optional
        s, the variance scale of delta_t; default: the schema's ``chromosomes.bbdm.max_var``.
    """

    timesteps: int = default("chromosomes.bbdm.timesteps")
    m_min: float = default("chromosomes.bbdm.m_range")[0]
    m_max: float = default("chromosomes.bbdm.m_range")[1]
    max_var: float = default("chromosomes.bbdm.max_var")

    @property
    def m(self) -> torch.Tensor:
        """m_t, linear from m_min to m_max.

        Returns
        -------
        torch.Tensor
            (T,) float64 tensor of m_t, t = 0 .. T-1.
        """
        return torch.linspace(self.m_min, self.m_max, self.timesteps, dtype=torch.float64)

    @property
    def delta(self) -> torch.Tensor:
        """Bridge variance delta_t = 2 s (m_t - m_t^2).

        Returns
        -------
        torch.Tensor
            (T,) float64 tensor of delta_t, t = 0 .. T-1.
        """
        m = self.m
        return 2.0 * self.max_var * (m - m * m)

    def _at(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.device)[t].to(like.dtype).view(-1, *([1] * (like.ndim - 1)))

    def q_sample(
        self, x0: torch.Tensor, y: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """Draw x_t from the forward marginal q(x_t | x0, y).

        Parameters
        ----------
        x0 : torch.Tensor
            (B, C, H, W) float tensor, the painted crops (target, t = 0).
        y : torch.Tensor
            (B, C, H, W) float tensor, the condition (DAPI repeated to C channels, t = T).
        t : torch.Tensor
            (B,) long tensor of time indices in 0 .. T-1.
        noise : torch.Tensor
            (B, C, H, W) float tensor, eps ~ N(0, 1).

        Returns
        -------
        torch.Tensor
            (B, C, H, W) x_t = (1 - m_t) x0 + m_t y + sqrt(delta_t) eps, of x0's dtype and device.
        """
        m = self._at(self.m, t, x0)
        sd = self._at(self.delta.sqrt(), t, x0)
        return (1 - m) * x0 + m * y + sd * noise

    def target(
        self,
        objective: str,
        x0: torch.Tensor,
        y: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """What the network learns to predict under ``objective``.

        Parameters
        ----------
        objective : str
            ``"grad"``, ``"noise"`` or ``"ysubx"`` (module docstring).
        x0, y, t : torch.Tensor
            As in :meth:`q_sample`.
        noise : torch.Tensor
            (B, C, H, W) float tensor, the eps x_t was drawn with (:meth:`q_sample`).

        Returns
        -------
        torch.Tensor
            (B, C, H, W): ``grad``: m_t (y - x0) + sqrt(delta_t) eps (= x_t - x0); ``noise``: eps;
            ``ysubx``: y - x0.

        Raises
        ------
        InputError
            If ``objective`` is not one of ``OBJECTIVES``.
        """
        if objective == "grad":
            m = self._at(self.m, t, x0)
            sd = self._at(self.delta.sqrt(), t, x0)
            return m * (y - x0) + sd * noise
        if objective == "noise":
            return noise
        if objective == "ysubx":
            return y - x0
        raise InputError("bbdm.objective", f"unknown objective '{objective}'; use {OBJECTIVES}")

    def x0_from(
        self,
        objective: str,
        x_t: torch.Tensor,
        y: torch.Tensor,
        t: torch.Tensor,
        prediction: torch.Tensor,
    ) -> torch.Tensor:
        """The estimate of x0 implied by a prediction at time t.

        Parameters
        ----------
        objective : str
            ``"grad"``, ``"noise"`` or ``"ysubx"`` (module docstring).
        x_t : torch.Tensor
            (B, C, H, W) float tensor, the current state.
        y : torch.Tensor
            (B, C, H, W) float tensor, the condition (DAPI repeated to C channels, t = T).
        t : torch.Tensor
            (B,) long tensor of time indices in 0 .. T-1.
        prediction : torch.Tensor
            (B, C, H, W) network output, of x_t's dtype.

        Returns
        -------
        torch.Tensor
            (B, C, H, W) x0 estimate: ``grad``: x_t - prediction; ``noise``:
            (x_t - m_t y - sqrt(delta_t) prediction) / (1 - m_t); ``ysubx``: y - prediction.

        Raises
        ------
        InputError
            If ``objective`` is not one of ``OBJECTIVES``.
        """
        if objective == "grad":
            return x_t - prediction
        if objective == "noise":
            m = self._at(self.m, t, x_t)
            sd = self._at(self.delta.sqrt(), t, x_t)
            return (x_t - m * y - sd * prediction) / (1 - m)
        if objective == "ysubx":
            return y - prediction
        raise InputError("bbdm.objective", f"unknown objective '{objective}'; use {OBJECTIVES}")

    def step_list(self, steps: int) -> list[int]:
        """``steps`` time indices from T-1 down to 0, linearly spaced (the last is 0).

        Parameters
        ----------
        steps : int
            Number of sampling steps, 2 .. T.

        Returns
        -------
        list of int
            Descending time indices, first T-1, last 0 (rounded).

        Raises
        ------
        InputError
            If ``steps`` < 2 or > T.
        """
        if steps < 2:
            raise InputError("bbdm.sample.steps", "needs at least 2 sampling steps")
        if steps > self.timesteps:
            raise InputError("bbdm.sample.steps", f"more than the {self.timesteps} time steps")
        return [int(v) for v in np.round(np.linspace(self.timesteps - 1, 0, steps))]

    def reverse_step(
        self,
        x_t: torch.Tensor,
        y: torch.Tensor,
        x0_hat: torch.Tensor,
        t: int,
        s: int,
        eta: float,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """Move from time t to an earlier time s given the current x0 estimate.

        sigma^2 = (delta_t - delta_s (1-m_t)^2/(1-m_s)^2) delta_s / delta_t is the exact
        posterior variance; eta^2 sigma^2 of it is drawn fresh and the rest carried along
        the current noise direction, so x_s keeps the marginal variance delta_s.

        Parameters
        ----------
        x_t : torch.Tensor
            (B, C, H, W) float tensor, the state at time t.
        y : torch.Tensor
            (B, C, H, W) float tensor, the condition (DAPI repeated to C channels, t = T).
        x0_hat : torch.Tensor
            (B, C, H, W) current estimate of x0.
        t : int
            Current time index, 0 < t < T.
        s : int
            Earlier time index, 0 <= s < t.
        eta : float
            Share of the posterior noise drawn fresh: 0 deterministic, 1 the exact posterior
            q(x_s | x_t, x0_hat).
        noise : torch.Tensor
            (B, C, H, W) fresh N(0, 1) noise.

        Returns
        -------
        torch.Tensor
            (B, C, H, W) x_s.
        """
        m, delta = self.m, self.delta
        m_t, m_s, d_t, d_s = float(m[t]), float(m[s]), float(delta[t]), float(delta[s])
        sigma2 = (d_t - d_s * (1 - m_t) ** 2 / (1 - m_s) ** 2) * d_s / d_t
        sigma2 = max(sigma2, 0.0)
        carried = max(d_s - eta**2 * sigma2, 0.0) / d_t
        direction = x_t - (1 - m_t) * x0_hat - m_t * y
        return (1 - m_s) * x0_hat + m_s * y + carried**0.5 * direction + eta * sigma2**0.5 * noise

    def sample(
        self,
        predict: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
        y: torch.Tensor,
        objective: str,
        steps: Sequence[int],
        eta: float,
        noise: Callable[[], torch.Tensor],
        clip: bool = True,
    ) -> torch.Tensor:
        """Run the reverse bridge from x_T = y over ``steps`` (descending, last = end).

        ``predict(x_t, y, t)`` is the network; ``noise()`` returns a fresh N(0, 1) batch
        (per-sample seeded by the caller). At the last step x0_hat itself is returned.

        Parameters
        ----------
        predict : callable
            (x_t, y, t) -> (B, C, H, W) prediction under ``objective``, t a (B,) long tensor.
        y : torch.Tensor
            (B, C, H, W) float tensor in [-1, 1], the condition (DAPI repeated to C channels).
        objective : str
            ``"grad"``, ``"noise"`` or ``"ysubx"`` (module docstring).
        steps : Sequence of int
            Descending time indices, e.g. :meth:`step_list`; the last is the end (0).
        eta : float
            Noise share of :meth:`reverse_step`: 0 deterministic, 1 the exact posterior.
        noise : callable
            () -> (B, C, H, W) tensor of fresh N(0, 1) noise.
        clip : bool, optional
            Clamp x0_hat to [-1, 1] at every step; default True.

        Returns
        -------
        torch.Tensor
            (B, C, H, W) x0 estimate of the last step, of y's dtype (y itself, copied, for empty
            ``steps``).

        Raises
        ------
        InputError
            If ``objective`` is not one of ``OBJECTIVES``.

        Examples
        --------
        >>> bridge, y = Bridge(timesteps=100), torch.zeros(2, 3, 32, 32)  # y: DAPI x 3 channels
        >>> net = lambda x_t, y, t: torch.zeros_like(x_t)  # the trained network in practice
        >>> steps = bridge.step_list(10)  # [99, 88, ..., 11, 0]
        >>> x0 = bridge.sample(net, y, "grad", steps, 1.0, lambda: torch.randn_like(y))
        >>> x0.shape
        torch.Size([2, 3, 32, 32])
        """
        x = y.clone()
        for position, t in enumerate(steps):
            t_batch = torch.full((len(y),), t, dtype=torch.long, device=y.device)
            x0_hat = self.x0_from(objective, x, y, t_batch, predict(x, y, t_batch).to(x.dtype))
            if clip:
                x0_hat = x0_hat.clamp(-1, 1)
            if position == len(steps) - 1:
                return x0_hat
            x = self.reverse_step(x, y, x0_hat, t, steps[position + 1], eta, noise())
        return x


def bbdm_loss(
    model: torch.nn.Module,
    bridge: Bridge,
    x0: torch.Tensor,
    y: torch.Tensor,
    objective: str,
    loss: str,
    generator: torch.Generator,
) -> torch.Tensor:
    """One training loss: t uniform, x_t from the forward marginal, L1 or L2 to target.

    Parameters
    ----------
    model : torch.nn.Module
        The network, called as ``model(x_t, y, t)`` -> (B, C, H, W) prediction.
    bridge : Bridge
        The schedule.
    x0 : torch.Tensor
        (B, C, H, W) float32 tensor, the painted crops in [-1, 1].
    y : torch.Tensor
        (B, C, H, W) float32 tensor, their conditions (DAPI repeated to C channels).
    objective : str
        ``"grad"``, ``"noise"`` or ``"ysubx"`` (module docstring).
    loss : str
        ``"l1"`` for mean absolute error; anything else (``"l2"``) for mean squared error.
    generator : torch.Generator
        Draws t and eps; on x0's device.

    Returns
    -------
    torch.Tensor
        0-dim float32 tensor, the mean loss over every element of the batch.

    Raises
    ------
    InputError
        If ``objective`` is not one of ``OBJECTIVES``.
    """
    t = torch.randint(0, bridge.timesteps, (len(x0),), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    x_t = bridge.q_sample(x0, y, t, noise)
    prediction = model(x_t, y, t).float()
    target = bridge.target(objective, x0, y, t, noise)
    if loss == "l1":
        return (prediction - target).abs().mean()
    return F.mse_loss(prediction, target)
