"""bnn-cifar model: the expression as a torch module, sign/STE, binary convolutions, the ResNet."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluators.bnn_cifar.model import (BinaryConv2d, BinaryResNet18, SignSTE, WeightSign, binarize, clip_mask,
                                        n_parameters)
from evaluators.torch_expr import ExprActivation
from gpengine.expr_text import parse
from gpengine.numeric import evaluate as np_evaluate
from gpengine.numeric import param_sites
from primitives import get_set

PSET = get_set("gaaf")
EXPRS = ["x", "sin(x) + x", "gate(x, x)", "blend(sin(x), x)", "scale(shift(x)) * lconst(x)", "x * 0.5 - 2.0",
         "1.5", "param(0.25) * cos(x)", "max(atan(x), erf(x)) / (x + 3.0)"]


@pytest.mark.parametrize("text", EXPRS)
def test_expr_activation_matches_the_numpy_form(text):
    expr = parse(text)
    act = ExprActivation(expr, PSET, channels=3)
    x = torch.linspace(-3, 3, 3 * 4 * 5, dtype=torch.float64).view(1, 3, 4, 5)
    got = act.double()(x)
    want = np_evaluate(expr, PSET, x.numpy())
    assert got.shape == x.shape
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-6, atol=1e-9)


def test_parameters_are_per_channel_and_start_at_their_init():
    expr = parse("blend(scale(x), shift(x)) + param(0.25)")
    act = ExprActivation(expr, PSET, channels=5)
    inits = [s.init for s in param_sites(expr, PSET)]
    assert act.weight.shape == (4, 5)
    assert act.weight[:, 0].tolist() == inits
    assert torch.equal(act.weight, act.weight[:, :1].expand(4, 5))
    assert ExprActivation(parse("sin(x)"), PSET, 5).weight is None


def test_every_learnable_parameter_receives_a_gradient_per_channel():
    act = ExprActivation(parse("blend(scale(sin(x)), x) + shift(x) * lconst(x) * param(0.5)"), PSET, channels=3)
    x = torch.randn(2, 3, 4, 4)
    act(x).pow(2).sum().backward()
    g = act.weight.grad
    assert g.shape == (5, 3) and torch.isfinite(g).all()
    assert (g.abs() > 0).all(), g  # beta, s, b, s, the slot: every channel moves


def test_constant_expression_broadcasts_to_the_input_shape_and_keeps_gradients():
    act = ExprActivation(parse("lconst(x)"), PSET, channels=2)
    x = torch.randn(3, 2, 4, 4)
    y = act(x)
    assert y.shape == x.shape and torch.all(y == 1.0)
    y.sum().backward()
    assert act.weight.grad.tolist() == [[48.0, 48.0]]
    assert ExprActivation(parse("2.0"), PSET, 2)(x).shape == x.shape


def test_two_dimensional_inputs_work_too():
    act = ExprActivation(parse("scale(x)"), PSET, channels=4)
    assert act(torch.ones(2, 4)).shape == (2, 4)


def test_sign_of_zero_is_plus_one_and_outputs_are_exactly_plus_minus_one():
    y = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0])
    assert binarize(y, 1.3).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    assert WeightSign.apply(torch.tensor([0.0, -0.5, 0.5])).tolist() == [1.0, -1.0, 1.0]
    assert binarize(y.bfloat16(), 1.3).dtype == torch.bfloat16


def test_ste_gradient_is_the_clip_mask():
    y = torch.tensor([-2.0, -1.3, -0.5, 0.0, 0.5, 1.3, 1.31, 2.0], requires_grad=True)
    SignSTE.apply(y, 1.3).backward(torch.arange(1.0, 9.0))
    assert y.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=50),
       st.sampled_from([1.3, 1.0, 0.5, 2.0]))
def test_the_comparison_free_clip_mask_equals_the_comparison(values, clip):
    """clip_mask (used under torch.compile) is exactly |y| <= c, edges and infinities included."""
    c32 = float(np.float32(clip))
    y = torch.tensor(values + [c32, -c32, np.nextafter(np.float32(c32), np.float32(9)).item(), 0.0, -0.0],
                     dtype=torch.float32)
    assert clip_mask(y, clip).tolist() == (y.abs() <= clip).float().tolist()
    yb = y.bfloat16()  # autocast runs the activation in bf16
    assert clip_mask(yb, clip).tolist() == (yb.abs() <= clip).float().tolist()


def test_the_compiled_ste_has_the_eager_gradient():
    """Under torch.compile the STE saves y and rebuilds the mask without a bool: same gradient."""
    y0 = torch.tensor([-2.0, -1.3, -0.5, 0.0, 0.5, 1.3, 1.31, 2.0, float("inf")])
    g = torch.arange(1.0, 10.0)
    grads = []
    for fn in (lambda t: SignSTE.apply(t, 1.3), torch.compile(lambda t: SignSTE.apply(t, 1.3), backend="aot_eager")):
        y = y0.clone().requires_grad_()
        out = fn(y)
        out.backward(g)
        assert out.tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
        grads.append(y.grad.tolist())
    assert grads[0] == grads[1] == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0, 0.0]


def test_ste_through_the_activation_multiplies_by_its_derivative():
    # sign(clip(sin(x) + x)): gradient = [|sin(x) + x| <= 1.3] * (cos(x) + 1), by hand
    act = ExprActivation(parse("sin(x) + x"), PSET, channels=1)
    xs = [-1.0, -0.4, 0.0, 0.3, 0.6, 0.7, 2.0]
    x = torch.tensor(xs, dtype=torch.float64).view(1, 1, 1, -1).requires_grad_()
    binarize(act.double()(x), 1.3).sum().backward()
    want = [(math.cos(v) + 1.0) if abs(math.sin(v) + v) <= 1.3 else 0.0 for v in xs]
    assert want[0] == 0.0 and want[4] > 0 and want[5] == 0.0  # |sin(0.7)+0.7| = 1.344 > 1.3
    np.testing.assert_allclose(x.grad.flatten().numpy(), want, rtol=1e-12)


def test_binary_conv_sees_only_plus_minus_one():
    conv = BinaryConv2d(ExprActivation(parse("x"), PSET, 2), 2, 3, 3, 1, clip=1.3)
    seen = {}
    conv.register_forward_pre_hook(lambda m, inp: seen.setdefault("x", inp[0]))
    x = torch.randn(2, 2, 5, 5)
    x[0, 0, 0, 0] = 0.0
    out = conv(x)
    a = torch.where(x >= 0, 1.0, -1.0)
    w = torch.where(conv.weight >= 0, 1.0, -1.0)
    torch.testing.assert_close(out, torch.nn.functional.conv2d(a, w, padding=1))
    assert set(torch.unique(w).tolist()) <= {-1.0, 1.0}


def test_a_binary_convolution_in_bf16_computes_the_fp32_result_exactly():
    # +-1 operands are exact in bf16 and these sums (at most 8 x 9 = 72 terms) fit its 8 bits
    torch.manual_seed(0)
    conv = BinaryConv2d(ExprActivation(parse("sin(x) + x"), PSET, 8), 8, 4, 3, 1, clip=1.3)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    ref = conv(x)
    ref.sum().backward()
    grads = x.grad.clone(), conv.weight.grad.clone()
    x.grad = conv.weight.grad = None
    conv.compute_dtype = torch.bfloat16
    out = conv(x)
    out.sum().backward()
    assert out.dtype == x.grad.dtype == conv.weight.grad.dtype == torch.float32
    assert torch.equal(out, ref)
    assert torch.equal(x.grad, grads[0]) and torch.equal(conv.weight.grad, grads[1])


def test_set_binary_dtype_reaches_every_binary_convolution_and_nothing_else():
    torch.manual_seed(0)
    model = BinaryResNet18(parse("x"), PSET, width=4)
    x = torch.randn(4, 3, 32, 32)
    ref = model(x)
    model.set_binary_dtype(torch.bfloat16)
    assert [c.compute_dtype for c in model.binary_convs()] == [torch.bfloat16] * 19
    assert all(p.dtype == torch.float32 for p in model.parameters())  # latent weights, stem, BatchNorm, head
    out = model(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-2, atol=1e-2)
    model.set_binary_dtype(None)
    assert torch.equal(model(x), ref)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels-last"])
@pytest.mark.parametrize("channels", [4, 16])
def test_a_strided_shortcut_gives_the_strided_convolution_of_every_signed_pixel(channels, channels_last):
    """The 1x1 stride-2 shortcut: the strided convolution of every signed pixel, output and gradients,
    as fp64 computes it. Below 8 channels it subsamples before AF and sign: four channels,
    channels-last and two threads are where torch 2.13.0's own strided 1x1 convolution gets the
    weight gradient wrong on AVX2 CPUs (up to 100%)."""
    torch.manual_seed(0)
    conv = BinaryConv2d(ExprActivation(parse("shift(sin(x) + x)"), PSET, channels), channels, 2 * channels, 1, 2, 1.3)
    with torch.no_grad():  # AF's shift away from its initial 0
        for p in conv.act.parameters():
            p.uniform_(-0.5, 0.5)
    ref = copy.deepcopy(conv).double()
    x = torch.randn(32, channels, 16, 16)
    x = (x.contiguous(memory_format=torch.channels_last) if channels_last else x).requires_grad_()
    xr = x.detach().double().contiguous().requires_grad_()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = conv(x)
        g = torch.randn_like(out)
        out.backward(g)
    finally:
        torch.set_num_threads(threads)
    want = torch.nn.functional.conv2d(binarize(ref.act(xr), 1.3), WeightSign.apply(ref.weight), stride=2)
    want.backward(g.double())
    assert out.shape == (32, 2 * channels, 8, 8)
    torch.testing.assert_close(out.double(), want)
    torch.testing.assert_close(x.grad.double(), xr.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv.weight.grad.double(), ref.weight.grad, rtol=1e-5, atol=1e-4)
    for p, q in zip(conv.act.parameters(), ref.act.parameters(), strict=True):
        torch.testing.assert_close(p.grad.double(), q.grad, rtol=1e-5, atol=1e-4)
    assert conv.stride == (2, 2)  # described as what it computes, whichever way it computes it
    assert (conv.subsample, conv.conv_stride) == ((2, 1) if channels < 8 else (1, 2))


def test_binary_conv_latent_weight_gradient_passes_straight_through():
    conv = BinaryConv2d(ExprActivation(parse("x"), PSET, 1), 1, 1, 1, 1, clip=1.3)
    x = torch.full((1, 1, 2, 2), 0.5)
    conv(x).sum().backward()
    assert conv.weight.grad.item() == pytest.approx(4.0)  # d/dw of sum(sign(w) * 1) over 4 pixels, STE


def test_resnet_layout_shapes_and_one_activation_per_binary_conv():
    torch.manual_seed(0)
    model = BinaryResNet18(parse("x"), PSET, width=4)
    convs = model.binary_convs()
    assert len(convs) == 16 + 3  # two per block, eight blocks, plus three downsampling shortcuts
    assert len({id(c.act) for c in convs}) == 19  # every layer has its own activation and parameters
    assert [c.in_channels for c in convs if c.kernel_size == (1, 1)] == [4, 8, 16]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert not model.stem[0].affine and isinstance(model.stem[1], torch.nn.Conv2d)
    assert n_parameters(model) == sum(p.numel() for p in model.parameters())


def test_latent_weights_are_clamped_after_a_step():
    torch.manual_seed(0)
    model = BinaryResNet18(parse("x"), PSET, width=4, clip=0.125)
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4)).backward()
    opt.step()
    assert max(c.weight.abs().max().item() for c in model.binary_convs()) > 0.125
    model.clamp_latent_()
    assert max(c.weight.abs().max().item() for c in model.binary_convs()) <= 0.125
    assert model.stem[1].weight.abs().max().item() > 0.125  # the full-precision stem is not clamped


def test_learnable_activation_parameters_in_the_model_receive_gradients():
    torch.manual_seed(0)
    model = BinaryResNet18(parse("blend(sin(x), x)"), PSET, width=4)
    torch.nn.functional.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.arange(8)).backward()
    grads = [c.act.weight.grad for c in model.binary_convs()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(int((g != 0).any()) for g in grads) >= 15


def test_constants_are_a_buffer_so_only_the_structure_shapes_the_compiled_graph():
    """Expressions that differ only in their constants trace to the same graph (one compile serves both)."""
    graphs = []

    def capture(gm, example_inputs):
        graphs.append(gm.code)
        return gm.forward

    x = torch.randn(2, 3, 4, 4)
    for text, shift in (("sin(x * 0.37) + 1.25", 1.25), ("sin(x * -2.5) + 0.125", 0.125)):
        act = ExprActivation(parse(text), PSET, channels=3)
        torch._dynamo.reset()
        got = torch.compile(act, backend=capture, fullgraph=True)(x)
        scale = float(act.consts[0])
        torch.testing.assert_close(got, torch.sin(x * scale) + shift)
    assert len(graphs) == 2 and graphs[0] == graphs[1]
    assert "0.37" not in graphs[0] and "1.25" not in graphs[0]


def test_constants_keep_their_values_and_stay_out_of_the_state_dict():
    act = ExprActivation(parse("x * 0.1 + 3.0"), PSET, channels=2)
    assert act.consts.dtype == torch.float32 and act.consts.tolist() == [torch.tensor(0.1).item(), 3.0]
    assert "consts" not in act.state_dict()
    x = torch.randn(2, 2, 3, 3)
    assert torch.equal(act(x), x * torch.tensor(0.1) + torch.tensor(3.0))  # rounded to float32 as literals are
    with pytest.raises(ValueError, match="1e\\+308.*does not fit in float32"):
        ExprActivation(parse("square(1e308) * x"), PSET, channels=2)
