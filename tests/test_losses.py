import pytest
import torch

from impasto.core import losses
from impasto.core.errors import ImpastoError
from impasto.core.losses import (
    StyleObjective,
    StyleTarget,
    content_loss,
    gram_matrix,
    gram_style_loss,
    mean_std,
    mean_std_loss,
    normalised,
    total_variation,
)


def direct_gram(f: torch.Tensor) -> torch.Tensor:
    """Gram matrix by explicit sums over positions, for comparison."""
    n, c, h, w = f.shape
    out = torch.zeros(n, c, c, dtype=torch.float64)
    for b in range(n):
        for i in range(c):
            for j in range(c):
                out[b, i, j] = (f[b, i].double() * f[b, j].double()).sum() / (c * h * w)
    return out


def test_gram_matches_direct_computation():
    f = torch.randn(2, 5, 7, 3)
    assert torch.allclose(gram_matrix(f).double(), direct_gram(f), atol=1e-6)


def test_gram_same_for_channels_last_layout():
    f = torch.randn(1, 8, 9, 11)
    assert torch.allclose(gram_matrix(f), gram_matrix(f.contiguous(memory_format=torch.channels_last)), atol=1e-6)


def test_gram_is_size_invariant_for_a_repeated_texture():
    tile = torch.rand(1, 4, 6, 6)
    big = tile.repeat(1, 1, 3, 3)
    assert torch.allclose(gram_matrix(tile), gram_matrix(big), atol=1e-6)


def test_gram_bf16_close_to_fp32():
    f = torch.rand(1, 16, 20, 20) * 50
    exact = gram_matrix(f)
    approx = gram_matrix(f.bfloat16())
    assert approx.dtype == torch.float32
    assert (approx - exact).norm() / exact.norm() < 1e-2


def test_content_and_style_loss_values():
    a, b = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    assert content_loss(a, b).item() == pytest.approx(((a - b) ** 2).mean().item(), rel=1e-6)
    target = gram_matrix(b)
    expected = ((direct_gram(a) - direct_gram(b)) ** 2).mean().item()
    assert gram_style_loss(a, target).item() == pytest.approx(expected, rel=1e-4)
    assert gram_style_loss(b, target).item() == pytest.approx(0.0, abs=1e-10)


def test_mean_std_and_its_loss():
    f = torch.randn(2, 3, 8, 8) * 2 + 5
    mean, std = mean_std(f)
    assert torch.allclose(mean.flatten(), f.mean(dim=(2, 3)).flatten(), atol=1e-5)
    assert torch.allclose(std.flatten(), f.std(dim=(2, 3), unbiased=False).flatten(), atol=1e-4)
    assert mean_std_loss(f, mean, std).item() == pytest.approx(0.0, abs=1e-8)


def test_total_variation():
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert total_variation(flat).item() == 0.0
    x = torch.zeros(1, 1, 2, 2)
    x[..., 0, 1] = 1.0  # one bright pixel: two horizontal... and vertical differences
    expected = ((x[..., :, 1:] - x[..., :, :-1]) ** 2).mean() + ((x[..., 1:, :] - x[..., :-1, :]) ** 2).mean()
    assert total_variation(x).item() == pytest.approx(expected.item())


def test_normalised_weights():
    assert normalised([2, 6], "w") == [0.25, 0.75]
    with pytest.raises(ImpastoError):
        normalised([0, 0], "w")
    with pytest.raises(ImpastoError):
        normalised([1, -1], "w")


def test_objective_combines_weighted_terms():
    feats = {"a": torch.randn(1, 2, 4, 4), "b": torch.randn(1, 3, 2, 2)}
    target_c = torch.randn(1, 2, 4, 4)
    target_g = torch.randn(1, 3, 3)
    obj = StyleObjective({"a": target_c}, [StyleTarget({"b": target_g})], content_weight=2.0, style_weight=3.0,
                         tv_weight=5.0, style_layer_weights={"b": 0.5})
    image = torch.rand(1, 3, 8, 8)
    terms = obj.terms(image, feats)
    assert terms["content"].item() == pytest.approx(2.0 * content_loss(feats["a"], target_c).item(), rel=1e-5)
    assert terms["style"].item() == pytest.approx(3.0 * 0.5 * gram_style_loss(feats["b"], target_g).item(), rel=1e-5)
    assert terms["tv"].item() == pytest.approx(5.0 * total_variation(image).item(), rel=1e-5)
    assert terms["total"].item() == pytest.approx(sum(terms[k].item() for k in ("content", "style", "tv")), rel=1e-5)
    assert obj.layers == ["a", "b"]


def test_relative_sliced_wasserstein_compares_distributions_not_places():
    from impasto.core.losses import relative_sliced_wasserstein

    torch.manual_seed(0)
    target = torch.rand(2, 16, 12, 10) * 3.0
    shuffled = target.flatten(2)[:, :, torch.randperm(120)].reshape(2, 16, 12, 10)

    def distance(output, of=target):
        return float(relative_sliced_wasserstein(output, of, torch.Generator().manual_seed(1), directions=8))

    assert distance(shuffled) < 1e-10  # the same values elsewhere: the same distribution
    farther, nearer = target * 0.5, target * 0.9
    assert distance(farther) > distance(nearer) > 0.0
    assert abs(distance(5 * farther, 5 * target) - distance(farther)) < 1e-6  # relative: no scale
    one = target[:1]  # one painting for every image: the same as that painting repeated
    assert abs(distance(farther, one) - distance(farther, one.expand(2, -1, -1, -1))) < 1e-9
    small = torch.nn.functional.avg_pool2d(target, 2)  # another size: quantiles are resampled
    assert distance(small) > 0.0 and torch.isfinite(torch.tensor(distance(small)))
    output = (target * 0.5).requires_grad_()
    relative_sliced_wasserstein(output, target, torch.Generator().manual_seed(1)).backward()
    assert float((output.grad * (target - output.detach())).sum()) < 0  # descent moves it toward the target


@pytest.mark.parametrize("channels, size", [(16, (96, 128)), (64, (40, 36)), (3, (33, 17))])
@pytest.mark.parametrize("channels_last", [True, False])
def test_channel_moments_are_exact_for_large_maps_in_bf16_whatever_the_thread_count(channels, size, channels_last,
                                                                                    monkeypatch):
    """The statistics are summed piece by piece around a pivot: a map far from zero in bf16 (where a
    plain E[x^2] - E[x]^2 would cancel) still gets float64's mean and variance in either layout,
    and the same bits with one thread as with several."""
    monkeypatch.setattr(losses, "MOMENT_PIECE", 4096)  # several pieces even for a small map
    maps = (torch.randn(2, channels, *size) * 0.05 + 40).bfloat16()
    if channels_last:
        maps = maps.contiguous(memory_format=torch.channels_last)
    mean, variance = losses.channel_moments(maps)
    expected_variance, expected_mean = torch.var_mean(maps.double(), dim=(2, 3), correction=0)
    torch.testing.assert_close(mean.double(), expected_mean, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(variance.double(), expected_variance, atol=1e-7, rtol=1e-4)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = losses.channel_moments(maps)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(single[0], mean) and torch.equal(single[1], variance)


def test_mean_std_has_the_gradient_of_the_plain_formula():
    features = torch.rand(2, 5, 9, 7, requires_grad=True)
    mean, std = losses.mean_std(features)
    (mean.square().sum() + std.sum()).backward()
    ours = features.grad.clone()
    features.grad = None
    plain_mean = features.mean(dim=(2, 3))
    plain_std = (features.var(dim=(2, 3), unbiased=False) + 1e-5).sqrt()
    (plain_mean.square().sum() + plain_std.sum()).backward()
    torch.testing.assert_close(ours, features.grad, atol=1e-6, rtol=1e-4)


def test_training_takes_the_optimisation_sides_loss_classes_in_their_training_form():
    """One class per style loss: Gram and sliced Wasserstein serve the optimisation method and,
    relative and with a step's fresh directions, the networks' training."""
    import random

    gram, swd = losses.training_style_loss("gram"), losses.training_style_loss("swd")
    assert isinstance(gram, losses.GramLoss) and isinstance(swd, losses.SlicedWassersteinLoss)
    features, painting = torch.rand(2, 8, 6, 6), torch.rand(1, 8, 5, 5)
    rng = random.Random(0)
    assert gram.draw(rng) is None and rng.random() == random.Random(0).random()  # a Gram step draws nothing
    torch.testing.assert_close(gram.relative(features, gram.training_target(painting)),
                               losses.relative_gram_loss(features, losses.gram_matrix(painting)))
    assert float(swd.relative(painting, swd.training_target(painting), swd.draw(random.Random(1)))) < 1e-10
    assert float(swd.relative(features, painting, swd.draw(random.Random(1)))) > 0
    with pytest.raises(ImpastoError, match="unknown style loss 'mean_std'"):
        losses.training_style_loss("mean_std")
