"""Optical flow between video frames, warping, and where the flow can be trusted.

Flow comes from OpenCV (DIS, or Farneback), computed on the original frames, never on stylized
ones.  ``flow(a, b)`` gives, for each pixel of ``a``, its displacement to ``b``; warping the
previous frame into the current one therefore uses the backward flow (current -> previous).

Reliability follows Ruder et al. 2016 (after Sundaram et al. 2010): a pixel is occluded when the
forward and backward flows do not cancel, and on a motion boundary when the flow's gradient is
large; elsewhere the warped previous frame is a valid prediction of the current one.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from impasto.core.errors import ImpastoError

METHODS = ("dis", "farneback")


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow from frame ``a`` to frame ``b`` (RGB uint8, H x W x 3) as H x W x 2 float32 (dx, dy)."""
    if a.shape[:2] != b.shape[:2]:
        raise ImpastoError(f"frames of different sizes: {a.shape[1]}x{a.shape[0]} and {b.shape[1]}x{b.shape[0]}")
    ga, gb = _gray(a), _gray(b)
    if method == "dis":
        engine = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return engine.calc(ga, gb, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 4, 15, 3, 5, 1.1, 0)
    raise ImpastoError(f"unknown flow method {method!r}; choose {' or '.join(METHODS)}")


def _sample(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], interpolation,
                     borderMode=cv2.BORDER_REPLICATE)


def warp(image: np.ndarray, backward: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The previous frame's ``image`` (H x W x C float32) moved into the current frame, given the
    backward flow (current -> previous)."""
    return _sample(np.ascontiguousarray(image, dtype=np.float32), backward, interpolation)


def reliability(forward: np.ndarray, backward: np.ndarray, boundaries: bool = True) -> np.ndarray:
    """H x W float32 in {0, 1}: 1 where the current frame's pixel was visible in the previous frame
    and (with ``boundaries``) is not on a motion boundary.  ``forward`` = previous -> current,
    ``backward`` = current -> previous."""
    forward_at = _sample(forward, backward)  # the forward flow at the point each pixel came from
    total = forward_at + backward
    squared = lambda f: (f ** 2).sum(axis=-1)  # noqa: E731
    occluded = squared(total) > 0.01 * (squared(forward_at) + squared(backward)) + 0.5
    if not boundaries:
        return (~occluded).astype(np.float32)
    du_y, du_x = np.gradient(backward[..., 0])
    dv_y, dv_x = np.gradient(backward[..., 1])
    boundary = du_x ** 2 + du_y ** 2 + dv_x ** 2 + dv_y ** 2 > 0.01 * squared(backward) + 0.002
    return (~(occluded | boundary)).astype(np.float32)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """H x W x C float32 or H x W -> (1, C, H, W) tensor."""
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None].float()


def to_array(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor in [0, 1] -> H x W x 3 float32."""
    return image[0].detach().float().cpu().permute(1, 2, 0).numpy()


def frame_motion(previous: np.ndarray, current: np.ndarray, method: str = "dis") -> tuple[np.ndarray, np.ndarray]:
    """(backward flow current -> previous, reliability mask) between two original frames."""
    backward = optical_flow(current, previous, method)
    forward = optical_flow(previous, current, method)
    return backward, reliability(forward, backward)


def warping_error(frames: list[np.ndarray], stylized: list[np.ndarray], method: str = "dis") -> tuple[float, list[float]]:
    """The temporal-consistency metric: for each pair, the mean over reliable pixels of the squared
    difference (summed over RGB, values in [0, 1]) between a stylized frame and the previous
    stylized frame warped by the original clip's flow.  Returns (mean over pairs, per pair)."""
    if len(frames) != len(stylized):
        raise ImpastoError(f"the clips have {len(frames)} and {len(stylized)} frames; they must match")
    if len(frames) < 2:
        raise ImpastoError("a clip needs at least two frames to measure temporal consistency")
    errors = []
    for t in range(1, len(frames)):
        backward, mask = frame_motion(frames[t - 1], frames[t], method)
        previous = stylized[t - 1].astype(np.float32) / 255.0
        current = stylized[t].astype(np.float32) / 255.0
        squared = ((current - warp(previous, backward)) ** 2).sum(axis=-1)
        errors.append(float((mask * squared).sum() / max(mask.sum(), 1.0)))
    return float(np.mean(errors)), errors


def inside(flow: np.ndarray) -> np.ndarray:
    """H x W float32: 1 where ``x + flow(x)`` lands inside the frame (a pixel carried from outside is not)."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    x, y = grid_x + flow[..., 0], grid_y + flow[..., 1]
    return ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).astype(np.float32)


def chain(step: np.ndarray, step_reliable: np.ndarray, further: np.ndarray | None,
          further_reliable: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """One link more of a flow chain: ``step`` maps this frame to its neighbour, ``further`` maps the
    neighbour to a frame further away (None: the neighbour is the end).  Returns the flow from this
    frame to that end, and where it is reliable (every link reliable and inside the frame).

    Composing flows and sampling the far image once keeps it sharp; warping it link by link would
    blur it a little more with every frame."""
    if further is None:
        return step, step_reliable * inside(step)
    flow = step + _sample(further, step)
    reliable = step_reliable * (_sample(further_reliable, step, cv2.INTER_NEAREST) > 0.5) * inside(step)
    return flow, reliable.astype(np.float32)


def pair_motion(previous: np.ndarray, current: np.ndarray, method: str = "dis", boundaries: bool = True
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both directions between two original frames: (backward flow current -> previous, where it is
    reliable, forward flow previous -> current, where that is reliable)."""
    backward = optical_flow(current, previous, method)
    forward = optical_flow(previous, current, method)
    return (backward, reliability(forward, backward, boundaries), forward,
            reliability(backward, forward, boundaries))
