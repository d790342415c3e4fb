"""PWAM, language gate and SimpleDecoding against plain formulations of the reference."""
import pytest
import torch
import torch.nn.functional as F

from afb_urr.referring.decoder import SimpleDecoding
from afb_urr.referring.pwam import PWAM, language_gate
from referring_common import single_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


def _conv(seq, x):
    """A Conv1d k=1 as a per-position Linear: x (B, C_in, P) -> (B, C_out, P)."""
    conv = seq[0]
    return torch.einsum("oi,bip->bop", conv.weight[:, :, 0], x) + conv.bias[None, :, None]


def _inorm(x, eps=1e-5):
    """Instance norm over positions (last dim), biased variance."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def _gelu(x):
    return 0.5 * x * (1 + torch.erf(x / 2 ** 0.5))


def _reference_pwam(p: PWAM, x, words, m, heads=1, eps=1e-5):
    att = p.image_lang_att
    b, hw, c = x.shape
    d = c // heads
    xc = x.transpose(1, 2)
    vis = _gelu(_conv(p.vis_project, xc))
    q = _inorm(_conv(att.f_query, xc), eps)  # (B, C, HW)
    k = _conv(att.f_key, words) * m[:, None]
    v = _conv(att.f_value, words) * m[:, None]
    outs = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        logits = torch.einsum("bcp,bcn->bpn", q[:, sl], k[:, sl]) / c ** 0.5 + 10000.0 * (m[:, None] - 1)
        outs.append(torch.einsum("bpn,bcn->bcp", logits.softmax(-1), v[:, sl]))
    g = _inorm(_conv(att.W, torch.cat(outs, 1)), eps)
    return _gelu(_conv(p.project_mm, vis * g)).transpose(1, 2)


def _inputs(seed=0, c=8, dtext=12, n=6, hw=10, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, hw, c, generator=g) * scale
    words = torch.randn(2, dtext, n, generator=g)
    m = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=torch.float32)
    return x, words, m


@pytest.mark.parametrize("heads", [1, 2])
def test_pwam_matches_reference(heads):
    torch.manual_seed(0)
    p = PWAM(8, text_dim=12, num_heads=heads).eval()
    x, words, m = _inputs()
    torch.testing.assert_close(p(x, words, m.long()), _reference_pwam(p, x, words, m, heads), atol=1e-5, rtol=1e-5)


def test_pwam_ignores_padded_words():
    torch.manual_seed(1)
    p = PWAM(8, text_dim=12).eval()
    x, words, m = _inputs()
    out = p(x, words, m)
    changed = words.clone()
    changed[0, :, 3:] = torch.randn(12, 3) * 100
    changed[1, :, 5] = 7.0
    assert torch.equal(p(x, changed, m), out)
    changed[0, :, 2] += 1.0  # a real word does matter
    assert (p(x, changed, m) - out).abs().max() > 1e-4
    # ignoring the mask would change the result: the mask is load-bearing
    assert (p(x, words, torch.ones_like(m)) - out).abs().max() > 1e-4


def test_pwam_instance_norm_eps_is_1e5():
    """Low-variance features make the IN eps visible: 1e-5 matches, 1e-6 does not."""
    torch.manual_seed(2)
    p = PWAM(8, text_dim=12).eval()
    with torch.no_grad():
        for seq in (p.image_lang_att.f_query, p.image_lang_att.W):
            seq[0].weight.mul_(1e-3)
            seq[0].bias.zero_()
    x, words, m = _inputs(scale=1.0)
    out = p(x, words, m)
    torch.testing.assert_close(out, _reference_pwam(p, x, words, m, eps=1e-5), atol=1e-5, rtol=1e-5)
    assert (out - _reference_pwam(p, x, words, m, eps=1e-6)).abs().max() > 1e-3


def test_language_gate_shape_and_keys():
    gate = language_gate(8)
    assert [k for k in gate.state_dict()] == ["0.weight", "2.weight"]
    f = torch.randn(3, 8)
    ref = torch.tanh(F.linear(torch.relu(F.linear(f, gate[0].weight)), gate[2].weight))
    torch.testing.assert_close(gate(f), ref)


def test_decoder_matches_reference_on_odd_sizes():
    torch.manual_seed(3)
    dec = SimpleDecoding(64).eval()
    for m in dec.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    c4, c3, c2, c1 = (torch.randn(1, 64, 2, 2), torch.randn(1, 32, 3, 4), torch.randn(1, 16, 5, 7),
                      torch.randn(1, 8, 10, 13))
    x = c4
    for step, skip in (("4", c3), ("3", c2), ("2", c1)):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        x = torch.cat([x, skip], 1)
        for i in ("1", "2"):
            bn = getattr(dec, f"bn{i}_{step}")
            x = F.conv2d(x, getattr(dec, f"conv{i}_{step}").weight, padding=1)
            x = F.relu((x - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + 1e-5)
                       * bn.weight[:, None, None] + bn.bias[:, None, None])
    ref = F.conv2d(x, dec.conv1_1.weight, dec.conv1_1.bias)
    out = dec(c4, c3, c2, c1)
    assert out.shape == (1, 2, 10, 13)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert dec.conv1_4.in_channels == 96 and dec.conv1_4.out_channels == 32  # c4 + c4/2 -> c4/2
