"""L-BFGS that never waits for the device: one evaluation per step, step acceptance on the device.

PyTorch's L-BFGS with a strong-Wolfe line search decides in Python after every evaluation
(whether the step is long enough, whether to zoom), so each evaluation reads the loss back from
the device: on a GPU that is a host synchronisation per evaluation, and the GPU idles while Python
decides.  Here every decision is a tensor operation:

- the direction comes from the usual two-loop recursion over the last ``history`` pairs (s, y),
  kept in a ring on the device; a pair whose curvature is not positive (or that belongs to a
  rejected step) gets weight 0 instead of being skipped;
- the step ``x + t d`` is taken with t = lr (the scaled L-BFGS step needs no search in the usual
  case) and judged at the next evaluation: it is accepted when its loss is finite and satisfies the
  Armijo condition, else the point stays and t halves; an accepted step that taught no curvature
  (the loss curving down along it) makes the next one 4x longer, as a line search's extrapolation
  would.  A rejected step costs one evaluation, not a synchronisation.

So the host only queues work; reading the loss (for progress or convergence) is the caller's
choice, every N steps.  On a CPU both are cheap; what this is for is a GPU, where the line search's
reads stall the device (docs/archive/benchmarks-history.md, "L-BFGS without host synchronisation").
"""

from __future__ import annotations

from typing import Callable

import torch

#: Armijo's sufficient-decrease constant (as in PyTorch's line search).
ARMIJO = 1e-4


class DeviceLBFGS:
    """Minimise a function of ``image`` (a leaf tensor that requires grad) without host syncs.

    ``step(closure)``: ``closure()`` evaluates the loss at ``image``'s current value and leaves its
    gradient in ``image.grad``; the step judges that point, then moves ``image`` to the next point
    to try.  :attr:`point` is the best accepted point, :attr:`accepted` whether the last evaluated
    point was taken (a bool tensor on the device).

    ``first_step``: the mean pixel change of the first step (else PyTorch's rule, lr * min(1, 1/|g|_1)
    of the gradient).
    """

    def __init__(self, image: torch.Tensor, lr: float = 1.0, history: int = 50,
                 first_step: float | None = None) -> None:
        self.image = image
        self.lr = lr
        self.history = history
        self.first_step = first_step
        flat = image.detach().reshape(-1).float()
        size = flat.numel()
        self._x = flat.clone()
        self._grad = torch.zeros_like(flat)
        self._direction = torch.zeros_like(flat)
        self._loss = flat.new_tensor(float("inf"))
        self._t = flat.new_tensor(float(lr))
        self._gamma = flat.new_tensor(1.0)  # the initial inverse-Hessian scale, s.y / y.y of the newest good pair
        self._have_pair = torch.zeros((), dtype=torch.bool, device=flat.device)
        self._good = torch.zeros((), dtype=torch.bool, device=flat.device)  # the last pair taught curvature
        self._s = flat.new_zeros((history, size))
        self._y = flat.new_zeros((history, size))
        self._rho = flat.new_zeros(history)
        self._pairs = 0  # slots written so far (a host count: which slots to read is known without a sync)
        self._steps = 0
        self.accepted = torch.ones((), dtype=torch.bool, device=flat.device)

    @property
    def point(self) -> torch.Tensor:
        """The best accepted point, shaped like the image."""
        return self._x.view_as(self.image).to(self.image.dtype)

    @property
    def loss(self) -> torch.Tensor:
        """The loss at :attr:`point` (a tensor on the device: reading it is a synchronisation)."""
        return self._loss

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Evaluate the point to try, accept or reject it on the device, and move to the next one."""
        loss = closure().detach().float()
        trial = self.image.detach().reshape(-1).float()
        grad = self.image.grad.detach().reshape(-1).float()
        finite = torch.isfinite(loss) & torch.isfinite(grad).all()
        slope = torch.dot(self._grad, self._direction)
        decrease = loss <= self._loss + ARMIJO * self._t * slope
        accept = finite & (decrease | torch.isinf(self._loss))  # the first point is always taken when finite
        self._good = torch.zeros_like(self._good)
        if self._steps > 0:
            self._push_pair(trial - self._x, grad - self._grad, accept)
        self._x = torch.where(accept, trial, self._x)
        self._grad = torch.where(accept, grad, self._grad)
        self._loss = torch.where(accept, loss, self._loss)
        # accepted with curvature: the quasi-Newton step again; accepted without (the loss curves
        # down along the step, as Gram losses do near the photo): extrapolate, as a line search
        # would; rejected: halve
        grow = torch.where(self._good, self._t.new_tensor(self.lr), (self._t * 4).clamp(max=1e10))
        self._t = torch.where(accept, grow, self._t * 0.5)
        self.accepted = accept
        self._direction = self._descent_direction()
        if self._steps == 0 and self.first_step is not None:
            # the first direction is -gamma g; make its mean pixel change first_step
            scale = self.first_step * self._x.numel() / self._direction.abs().sum().clamp_min(1e-20)
            self._direction = self._direction * scale / self.lr
        self._steps += 1
        with torch.no_grad():
            self.image.copy_((self._x + self._t * self._direction).view_as(self.image))
        return loss

    def _push_pair(self, s: torch.Tensor, y: torch.Tensor, accept: torch.Tensor) -> None:
        """Write (s, y) into the ring; it counts (rho > 0) only if accepted with positive curvature."""
        ys = torch.dot(y, s)
        yy = torch.dot(y, y)
        # scale-free curvature test: the first step is tiny (1/N of the pixels in all), and so is its
        # s.y, which an absolute threshold would refuse, leaving the next steps as tiny as the first
        good = accept & (ys > 1e-10 * torch.sqrt(torch.dot(s, s) * yy))
        slot = self._pairs % self.history
        self._s[slot] = s
        self._y[slot] = y
        self._rho[slot] = torch.where(good, 1.0 / ys.clamp_min(1e-30), ys.new_zeros(()))
        self._gamma = torch.where(good, ys / yy.clamp_min(1e-30), self._gamma)
        self._have_pair = self._have_pair | good
        self._good = good
        self._pairs += 1

    def _descent_direction(self) -> torch.Tensor:
        """The two-loop recursion from the accepted gradient; -scaled gradient before any good pair."""
        g = self._grad
        count = min(self._pairs, self.history)
        slots = [(self._pairs - 1 - k) % self.history for k in range(count)]  # newest first
        q = -g
        alphas = []
        for slot in slots:
            alpha = self._rho[slot] * torch.dot(self._s[slot], q)
            q = q - alpha * self._y[slot]
            alphas.append(alpha)
        r = self._gamma * q
        for slot, alpha in zip(reversed(slots), reversed(alphas)):
            beta = self._rho[slot] * torch.dot(self._y[slot], r)
            r = r + (alpha - beta) * self._s[slot]
        # PyTorch's first step: lr * min(1, 1/|g|_1) along -g
        first = -g * torch.clamp(1.0 / g.abs().sum().clamp_min(1e-20), max=1.0)
        direction = torch.where(self._have_pair, r, first)
        return torch.where(torch.dot(direction, g) < 0, direction, first)  # always downhill
