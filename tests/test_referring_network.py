"""LAVT as a whole: the released state_dict layout and counts, and forward-pass facts."""
import math
import os

import pytest
import torch
import torch.nn.functional as F

from afb_urr.referring import LAVT, count_parameters
from referring_common import LIGHT_BERT, light_lavt, tokens, single_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")

TSV = os.path.join(os.path.dirname(__file__), "data", "lavt_one_keys.tsv")


def _released_rows():
    with open(TSV) as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f if not line.startswith("#")]


def test_released_state_dict_equals_published_keys_and_shapes():
    with torch.device("meta"):
        model = LAVT(swin="base", window_size=12)  # default bert_config = BERT-base
    state = model.state_dict()
    assert [(k, str(tuple(v.shape))) for k, v in state.items()] == _released_rows()
    params = dict(model.named_parameters())
    assert (len(state), len(params), len(state) - len(params)) == (648, 606, 42)
    assert sum(k.startswith("backbone.") for k in state) == 413
    assert sum(k.startswith("classifier.") for k in state) == 38
    assert sum(k.startswith("text_encoder.") for k in state) == 197
    for k, v in state.items():
        int64 = k.endswith(("relative_position_index", "num_batches_tracked"))
        assert v.dtype == (torch.int64 if int64 else torch.float32), k


def test_parameter_counts_match_reference_table():
    with torch.device("meta"):
        base, tiny = LAVT("base", 12), LAVT("tiny", 7)
    assert count_parameters(base) == dict(swin=86_880_376, pwam=8_531_200, gates=2_785_280, decoder=20_651_010,
                                          bert=108_891_648, total=227_739_514)
    assert count_parameters(tiny) == dict(swin=27_520_698, pwam=5_353_920, gates=1_566_720, decoder=11_617_538,
                                          bert=108_891_648, total=154_950_524)
    assert tiny.backbone.layers[0].blocks[0].attn.relative_position_bias_table.shape == (169, 3)


def test_forward_any_size_and_batch():
    model = light_lavt()
    ids, mask = tokens("the red ball", "the small blue cube on the left")
    image = torch.randn(2, 3, 37, 51)
    with torch.no_grad():
        out = model(image, ids, mask)
        single = model(image[1:], ids[1:], mask[1:])
    assert out.shape == (2, 2, 37, 51)
    torch.testing.assert_close(out[1:], single, atol=1e-5, rtol=1e-5)


def test_padded_tokens_change_nothing():
    """BERT's attention mask and PWAM's word mask together: padded ids have no effect."""
    model = light_lavt(1)
    ids, mask = tokens("the red ball")
    image = torch.randn(1, 3, 40, 32)
    with torch.no_grad():
        out = model(image, ids, mask)
        other = ids.clone()
        other[0, 5:] = torch.randint(5, len(LIGHT_BERT) + 10, (15,))
        assert torch.equal(model(image, other, mask), out)
        other = ids.clone()
        other[0, 2] = 7  # a real word: "blue" instead of "red"
        assert (model(image, other, mask) - out).abs().max() > 1e-5


def test_last_stage_gate_is_discarded():
    model = light_lavt(2)
    ids, mask = tokens("the red ball")
    image = torch.randn(1, 3, 32, 40)
    with torch.no_grad():
        out = model(image, ids, mask)
        for p in model.backbone.layers[3].res_gate.parameters():
            p.normal_()
        assert torch.equal(model(image, ids, mask), out)
        for p in model.backbone.layers[2].res_gate.parameters():
            p.normal_()
        assert (model(image, ids, mask) - out).abs().max() > 1e-5


def test_final_upsampling_is_bilinear_align_corners():
    model = light_lavt(3)
    ids, mask = tokens("a big cube")
    image = torch.randn(1, 3, 30, 45)  # patch grid 8 x 12 after padding to 32 x 48
    seen = {}
    model.classifier.register_forward_hook(lambda m, i, o: seen.setdefault("low", o))
    with torch.no_grad():
        out = model(image, ids, mask)
    low = seen["low"]
    assert low.shape[-2:] == (8, 12)
    torch.testing.assert_close(out, F.interpolate(low, size=(30, 45), mode="bilinear", align_corners=True))
    assert (out - F.interpolate(low, size=(30, 45), mode="bilinear", align_corners=False)).abs().max() > 1e-4


def _reference_bert(enc, ids, mask, heads):
    """Post-LN BERT of transformers 3.0.2 written out: -10000 on padded keys, erf-GELU, LN eps 1e-12."""
    sd = {k: v for k, v in enc.state_dict().items()}
    d = sd["embeddings.word_embeddings.weight"].shape[1]

    def ln(x, name):
        return F.layer_norm(x, (d,), sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-12)

    def lin(x, name):
        return F.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])

    n = ids.shape[1]
    x = (sd["embeddings.word_embeddings.weight"][ids] + sd["embeddings.position_embeddings.weight"][:n]
         + sd["embeddings.token_type_embeddings.weight"][0])
    x = ln(x, "embeddings.LayerNorm")
    add = (1.0 - mask[:, None, None, :].float()) * -10000.0
    layers = len({k.split(".")[2] for k in sd if k.startswith("encoder.layer.")})
    for i in range(layers):
        p = f"encoder.layer.{i}"
        split = [lin(x, f"{p}.attention.self.{t}").view(x.shape[0], n, heads, -1).transpose(1, 2)
                 for t in ("query", "key", "value")]
        att = (split[0] @ split[1].transpose(-1, -2) / math.sqrt(d // heads) + add).softmax(-1) @ split[2]
        x = ln(x + lin(att.transpose(1, 2).reshape(x.shape), f"{p}.attention.output.dense"),
               f"{p}.attention.output.LayerNorm")
        h = lin(x, f"{p}.intermediate.dense")
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
        x = ln(x + lin(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
    return x


def test_text_encoder_matches_plain_bert():
    model = light_lavt(4)
    ids, mask = tokens("the red ball on the left", "a cube")
    with torch.no_grad():
        ours = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        ref = _reference_bert(model.text_encoder, ids, mask, LIGHT_BERT["num_attention_heads"])
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    cfg = model.text_encoder.config
    assert cfg.layer_norm_eps == 1e-12 and cfg.hidden_act == "gelu" and cfg.pad_token_id == 0
    assert not any(k.startswith("pooler") or k.endswith("position_ids") for k in model.text_encoder.state_dict())
