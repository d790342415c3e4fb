import pytest
import torch
from torch import nn

from afb_urr import AFBURR, FeatureBank
from afb_urr.model import fold_batchnorm
from afb_urr.model.fold import count_batchnorm


def _randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics and affine parameters in every BatchNorm2d."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None:
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.2)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> None:
    """|a - b| <= tol relative to b's largest magnitude (random trunks are not normalised)."""
    scale = max(float(b.abs().max()), 1.0)
    assert float((a - b).abs().max()) <= tol * scale, float((a - b).abs().max()) / scale


# ResNet-50 runs in float64: with random weights and these statistics its fp32 output
# already differs from float64 by ~4e-4 before any fold (rounding amplified by 16 random
# blocks), so fp32 there would measure rounding, not the fold.
@pytest.mark.parametrize("backbone,channels_last,dtype", [
    ("resnet18", False, torch.float32), ("resnet18", True, torch.float32), ("resnet50", False, torch.float64)])
def test_folded_model_matches_unfolded(backbone, channels_last, dtype):
    torch.manual_seed(0)
    model = AFBURR(backbone).eval().to(dtype)
    _randomise_batchnorm(model)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)

    assert count_batchnorm(model) > 0 and count_batchnorm(folded) == 0
    assert folded.encoder_q.conv1.weight.is_contiguous(memory_format=fmt)
    frame = torch.rand(1, 3, 40, 56, dtype=dtype)
    probs = torch.softmax(torch.randn(3, 40, 56, dtype=dtype), dim=0)
    with torch.no_grad():
        keys, values = model.memorize(frame, probs)
        fkeys, fvalues = folded.memorize(frame, probs)
        _close(fkeys, keys)
        _close(fvalues, values)
        bank = FeatureBank(3, budget=10000)
        bank.init(keys, values, 0)
        query = torch.rand(2, 3, 40, 56, dtype=dtype)
        _, s = model.segment(query, bank, count_readout=False, return_probs=True)
        _, fs = folded.segment(query, bank, count_readout=False, return_probs=True)
    _close(fs, s)
    # The given model is untouched.
    after = model.state_dict()
    assert set(after) == set(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert isinstance(model.encoder_m.bn1, nn.BatchNorm2d)


def test_fold_handles_sequential_pairs_and_keeps_batchnorm_without_stats():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 4, 1, bias=False), nn.BatchNorm2d(4, track_running_stats=False))
    _randomise_batchnorm(net)
    net.eval()
    folded = fold_batchnorm(net)
    assert isinstance(folded[1], nn.Identity) and isinstance(folded[4], nn.BatchNorm2d)
    x = torch.randn(2, 3, 9, 11)
    with torch.no_grad():
        _close(folded(x), net(x), 1e-5)
