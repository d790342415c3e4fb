"""Swin pieces of LAVT against hand-derived values and plain re-formulations."""
import math

import pytest
import torch
import torch.nn.functional as F

from afb_urr.referring.swin import (PatchEmbed, PatchMerging, SwinBlock, relative_position_index, shift_mask,
                                    window_partition)
from referring_common import single_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_relative_position_index_hand_values():
    # w = 2: tokens (0,0), (0,1), (1,0), (1,1); index = (dy + 1) * 3 + (dx + 1)
    expected = torch.tensor([[4, 3, 1, 0],
                             [5, 4, 2, 1],
                             [7, 6, 4, 3],
                             [8, 7, 5, 4]])
    assert torch.equal(relative_position_index(2), expected)
    idx = relative_position_index(12)
    assert idx.shape == (144, 144) and idx.dtype == torch.int64
    assert int(idx.min()) == 0 and int(idx.max()) == 23 * 23 - 1
    assert torch.all(idx.diagonal() == 11 * 23 + 11)
    a, b = 3 * 12 + 7, 10 * 12 + 1  # (3, 7) and (10, 1)
    assert int(idx[a, b]) == (3 - 10 + 11) * 23 + (7 - 1 + 11)


def test_shift_mask_nine_regions_and_minus_100():
    w, s, hp, wp = 4, 2, 12, 12
    mask = shift_mask(hp, wp, w, s)
    assert mask.shape == ((hp // w) * (wp // w), w * w, w * w)
    assert set(mask.unique().tolist()) == {0.0, -100.0}
    # regions per window: 1 inside, 2 on the last window row/column, 4 in the corner window
    counts = []
    for m in mask:
        groups = {tuple((m[i] == 0).tolist()) for i in range(w * w)}
        counts.append(len(groups))
    assert counts == [1, 1, 2, 1, 1, 2, 2, 2, 4]
    # independent formulation: a pair is masked iff the roll wrapped it apart
    ys, xs = torch.meshgrid(torch.arange(hp), torch.arange(wp), indexing="ij")
    oy, ox = (ys + s) % hp, (xs + s) % wp  # original position of rolled token (y, x)
    coords = torch.stack([ys, xs, oy, ox], -1)[None].float()
    win = window_partition(coords, w)  # (nW, w*w, 4)
    rolled_d = win[:, :, None, :2] - win[:, None, :, :2]
    orig_d = win[:, :, None, 2:] - win[:, None, :, 2:]
    wrapped = (rolled_d != orig_d).any(-1)
    assert torch.equal(mask == -100, wrapped)


def _reference_block(blk: SwinBlock, x, h, w):
    """Dense attention over the whole padded map, allowed pairs = same shifted window, no wrap."""
    win, s = blk.window, blk.shift
    b, _, c = x.shape
    heads = blk.attn.num_heads
    hp, wp = -(-h // win) * win, -(-w // win) * win
    y = F.pad(blk.norm1(x).view(b, h, w, c), (0, 0, 0, wp - w, 0, hp - h)).reshape(b, hp * wp, c)
    ys, xs = torch.meshgrid(torch.arange(hp), torch.arange(wp), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    ry, rx = (ys - s) % hp, (xs - s) % wp  # position on the rolled map
    same = ((ry // win)[:, None] == (ry // win)[None]) & ((rx // win)[:, None] == (rx // win)[None])
    dy, dx = ry[:, None] - ry[None], rx[:, None] - rx[None]
    table = blk.attn.relative_position_bias_table
    span = 2 * win - 2  # pairs outside one window are dropped below; clamp only keeps the lookup in range
    bias = table[(dy + win - 1).clamp(0, span) * (span + 1) + (dx + win - 1).clamp(0, span)].permute(2, 0, 1)
    wrapped = (dy != ys[:, None] - ys[None]) | (dx != xs[:, None] - xs[None])
    qkv = blk.attn.qkv(y).view(b, -1, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    logits = qkv[0] * blk.attn.scale @ qkv[1].transpose(-1, -2) + bias - 100.0 * wrapped.float()
    logits = logits.masked_fill(~same, float("-inf"))
    out = (logits.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(b, hp, wp, c)[:, :h, :w].reshape(b, h * w, c)
    x = x + blk.attn.proj(out)
    return x + blk.mlp(blk.norm2(x))


@pytest.mark.parametrize("shift", [0, 2])
@pytest.mark.parametrize("hw", [(8, 8), (5, 7), (3, 2)])
def test_swin_block_matches_dense_reference(shift, hw):
    torch.manual_seed(1)
    blk = SwinBlock(dim=8, num_heads=2, window=4, shift=shift).eval()
    torch.nn.init.normal_(blk.attn.relative_position_bias_table, std=0.5)
    h, w = hw
    x = torch.randn(2, h * w, 8)
    hp, wp = -(-h // 4) * 4, -(-w // 4) * 4
    out = blk(x, h, w, shift_mask(hp, wp, 4, 2))
    torch.testing.assert_close(out, _reference_block(blk, x, h, w), atol=1e-5, rtol=1e-5)


def test_shift_without_mask_changes_output():
    torch.manual_seed(2)
    blk = SwinBlock(dim=8, num_heads=2, window=4, shift=2).eval()
    x = torch.randn(1, 64, 8)
    diff = (blk(x, 8, 8, shift_mask(8, 8, 4, 2)) - blk(x, 8, 8, torch.zeros(4, 16, 16))).abs().max()
    assert diff > 1e-3


def test_padding_tokens_take_part_as_keys():
    """QUIRK: zero padding tokens are attended to, so a 3x3 map differs from cropping a masked 4x4 map."""
    torch.manual_seed(3)
    blk = SwinBlock(dim=8, num_heads=2, window=4, shift=0).eval()
    x = torch.randn(1, 9, 8)
    y = blk(x, 3, 3, None)
    # exact-zero padded keys: logits = bias only for them; removing them changes the result
    xn = blk.norm1(x)
    qkv = blk.attn.qkv(xn).view(1, 9, 3, 2, 4).permute(2, 0, 3, 1, 4)
    idx = relative_position_index(4).view(4, 4, 4, 4)[:3, :3, :3, :3].reshape(9, 9)
    bias = blk.attn.relative_position_bias_table[idx].permute(2, 0, 1)
    att = ((qkv[0] * blk.attn.scale) @ qkv[1].transpose(-1, -2) + bias).softmax(-1) @ qkv[2]
    no_pad = x + blk.attn.proj(att.transpose(1, 2).reshape(1, 9, 8))
    no_pad = no_pad + blk.mlp(blk.norm2(no_pad))
    assert (y - no_pad).abs().max() > 1e-4


def test_mlp_uses_erf_gelu():
    blk = SwinBlock(dim=4, num_heads=1, window=2, shift=0)
    z = torch.linspace(-3, 3, 13)
    exact = 0.5 * z * (1 + torch.erf(z / math.sqrt(2)))
    torch.testing.assert_close(blk.mlp.act(z), exact, atol=1e-6, rtol=0)
    assert (F.gelu(z, approximate="tanh") - exact).abs().max() > 1e-4
    assert blk.norm1.eps == 1e-5 and blk.norm2.eps == 1e-5


def test_patch_embed_pads_right_bottom():
    torch.manual_seed(4)
    pe = PatchEmbed(8)
    x = torch.randn(1, 3, 10, 13)
    tokens, h, w = pe(x)
    assert (h, w) == (3, 4)
    ref = F.conv2d(F.pad(x, (0, 3, 0, 2)), pe.proj.weight, pe.proj.bias, stride=4)
    ref = F.layer_norm(ref.flatten(2).transpose(1, 2), (8,), pe.norm.weight, pe.norm.bias, 1e-5)
    torch.testing.assert_close(tokens, ref)


def test_patch_merging_phase_order_and_odd_sizes():
    torch.manual_seed(5)
    pm = PatchMerging(2)
    h, w = 3, 5
    x = torch.arange(h * w * 2, dtype=torch.float32).view(1, h * w, 2)
    seen = {}
    pm.norm.register_forward_hook(lambda m, inp, out: seen.setdefault("in", inp[0]))
    out = pm(x, h, w)
    assert out.shape == (1, 2 * 3, 4)
    grid = x.view(h, w, 2)
    cat = seen["in"].view(2, 3, 8)
    assert torch.equal(cat[0, 0], torch.cat([grid[0, 0], grid[1, 0], grid[0, 1], grid[1, 1]]))
    assert torch.equal(cat[1, 1], torch.cat([grid[2, 2], torch.zeros(2), grid[2, 3], torch.zeros(2)]))
    assert torch.equal(cat[1, 2], torch.cat([grid[2, 4], torch.zeros(6)]))
    assert pm.reduction.bias is None and pm.norm.normalized_shape == (8,)
