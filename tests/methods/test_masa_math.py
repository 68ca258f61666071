"""MASA's math against straightforward references (loops, numpy float64) on odd shapes."""

import math

import numpy as np
import pytest
import torch

from methods.masa import adaptive_scale, compress, decompress, gene_forward, gene_rank, spectral_loss


@pytest.fixture(autouse=True)
def float64():
    """References are float64; restore the default so other modules keep float32."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def ref_compress(x, r):
    """Appendix A.2, eq. 10, one vector at a time."""
    d = len(x)
    n = math.ceil(d / r)
    padded = list(x)
    need = n * r - d
    cyclic_tail = [x[(d - need + i) % d] for i in range(need)]
    padded += cyclic_tail
    return np.array([padded[i * r:(i + 1) * r] for i in range(n)])


def ref_decompress(z, d_out):
    flat = list(np.asarray(z).reshape(-1))
    while len(flat) < d_out:
        flat += list(np.asarray(z).reshape(-1))
    return np.array(flat[:d_out])


# (d_in, r): divisible, not divisible, r > d_in, r > 2 d_in, r = 1
SHAPES = [(12, 4), (10, 4), (7, 3), (5, 8), (3, 8), (9, 1), (1, 5)]


@pytest.mark.parametrize("d_in,r", SHAPES)
def test_compress_matches_reference(d_in, r):
    x = np.random.default_rng(d_in * 100 + r).normal(size=(3, d_in))
    got = compress(torch.tensor(x), r).numpy()
    assert got.shape == (3, math.ceil(d_in / r), r)
    for row, g in zip(x, got):
        np.testing.assert_array_equal(g, ref_compress(row, r))


def test_compress_pads_with_the_tail_in_order():
    x = torch.arange(1.0, 11.0)  # 1..10, r = 4 -> 3 blocks, 2 padded elements: 9, 10
    assert compress(x, 4)[-1].tolist() == [9.0, 10.0, 9.0, 10.0]
    # r > 2 d_in: the tail of x repeated cyclically, ending at x's last element: ... 2, 1, 2
    assert compress(torch.tensor([1.0, 2.0]), 5).tolist() == [[1.0, 2.0, 2.0, 1.0, 2.0]]


@pytest.mark.parametrize("n,r,d_out", [(3, 4, 12), (3, 4, 7), (2, 3, 20), (1, 5, 5), (2, 2, 3), (1, 1, 9)])
def test_decompress_matches_reference(n, r, d_out):
    z = np.random.default_rng(n + r + d_out).normal(size=(2, n, r))
    got = decompress(torch.tensor(z), d_out).numpy()
    for zz, g in zip(z, got):
        np.testing.assert_array_equal(g, ref_decompress(zz, d_out))


@pytest.mark.parametrize("d_in,r,d_out", [(10, 4, 7), (10, 4, 30), (12, 3, 12), (5, 8, 11), (64, 16, 176)])
def test_gene_forward_is_the_block_matrix_product(d_in, r, d_out):
    """f_d(M f_c(x)) equals one explicit matrix: blockdiag(M, ..., M) after the padding map, then the
    decompression selection map."""
    rng = np.random.default_rng(d_in + r + d_out)
    M, x = rng.normal(size=(r, r)), rng.normal(size=(4, d_in))
    n = math.ceil(d_in / r)
    P = np.zeros((n * r, d_in))  # padding as a 0/1 matrix
    need = n * r - d_in
    for i in range(n * r):
        P[i, i if i < d_in else (d_in - need + i - d_in) % d_in] = 1
    B = np.kron(np.eye(n), M)  # block diagonal
    D = np.zeros((d_out, n * r))  # truncation / repetition as a 0/1 matrix
    for i in range(d_out):
        D[i, i % (n * r)] = 1
    expected = x @ (D @ B @ P).T
    got = gene_forward(torch.tensor(M), torch.tensor(x), d_out).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_gene_forward_batches_over_leading_dims():
    M, x = torch.randn(2, 1, 4, 4), torch.randn(2, 5, 10)  # one gene matrix per batch entry
    got = gene_forward(M, x, 7)
    assert got.shape == (2, 5, 7)
    for b in range(2):
        torch.testing.assert_close(got[b], gene_forward(M[b, 0], x[b], 7))


@pytest.mark.parametrize("shape_w,r", [((20, 12), 5), ((6, 30), 8), ((9, 9), 9), ((4, 50), 7)])
def test_spectral_loss_matches_numpy(shape_w, r):
    rng = np.random.default_rng(r)
    W, M = rng.normal(size=shape_w), rng.normal(size=(r, r))
    k = min(r, *shape_w)
    s_w = np.linalg.svd(W, compute_uv=False)[:k]
    s_m = np.linalg.svd(M, compute_uv=False)[:k]
    expected = float(((np.log(s_w) - np.log(s_m)) ** 2).sum())
    got = spectral_loss(torch.tensor(W), torch.tensor(M))
    assert float(got) == pytest.approx(expected, rel=1e-10)


def test_spectral_loss_gradient_is_finite_for_singular_m():
    W = torch.randn(12, 10)
    M = torch.zeros(4, 4)
    M[0, 0], M[1, 1] = 1.0, 1.0  # rank 2, repeated singular values
    M.requires_grad_(True)
    loss = spectral_loss(W, M)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(M.grad).all()


def test_spectral_loss_gradient_matches_finite_differences():
    torch.manual_seed(0)
    W, M = torch.randn(8, 6), torch.randn(3, 3, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m: spectral_loss(W, m), (M,))


def ref_adaptive_scale(M, p, q, rank):
    """Section 3.2 with numpy, one dimension at a time, as the paper words it."""
    U, S, Vh = np.linalg.svd(M)
    U, S, Vh = U[:, :rank], S[:rank], Vh[:rank, :]

    def pick(importance, size):
        r = len(importance)
        order = sorted(range(r), key=lambda i: (-importance[i], i))
        if size <= r:
            return sorted(order[:size])
        idx = list(range(r))
        while len(idx) < size:
            idx += order[:size - len(idx)]
        return idx

    rows = pick(np.round(np.linalg.norm(U, axis=1), 9), p)  # ties (equal to 9 decimals) go by index
    cols = pick(np.round(np.linalg.norm(Vh, axis=0), 9), q)
    return U[rows] @ np.diag(S) @ Vh[:, cols]


# p < r, p = r, r < p < 2r, p > 2r, p > 3r; likewise q; rank < r and = r
@pytest.mark.parametrize("r,p,q,rank", [(6, 4, 9, 3), (6, 6, 6, 4), (6, 11, 4, 5), (6, 14, 20, 2), (5, 3, 2, 5),
                                        (4, 13, 1, 1)])
def test_adaptive_scale_matches_reference(r, p, q, rank):
    M = np.random.default_rng(r * p * q).normal(size=(r, r))
    got = adaptive_scale(torch.tensor(M), p, q, rank).numpy()
    assert got.shape == (p, q)
    np.testing.assert_allclose(got, ref_adaptive_scale(M, p, q, rank), atol=1e-10)


def test_adaptive_scale_identity_reproduces_m():
    M = torch.randn(7, 7)
    torch.testing.assert_close(adaptive_scale(M, 7, 7, 7), M)


@pytest.mark.parametrize("rank", [2, 4, 6])
def test_adaptive_scale_without_resampling_keeps_the_singular_values(rank):
    M = torch.randn(6, 6)
    S = torch.linalg.svdvals(M)
    torch.testing.assert_close(torch.linalg.svdvals(adaptive_scale(M, 6, 6, rank))[:rank], S[:rank])


@pytest.mark.parametrize("a,b", [(2, 2), (3, 1), (2, 5)])
def test_adaptive_scale_whole_copies_scale_the_spectrum(a, b):
    """Replicating rows changes U^T U: with p = a r and q = b r every row and column is copied
    a (b) times, U_p^T U_p = a I and V_q^T V_q = b I, so the singular values are sqrt(a b) S.
    (S is kept, but M_hat's spectrum is S only when nothing is replicated.)"""
    M = torch.randn(5, 5)
    S = torch.linalg.svdvals(M)[:4]
    got = torch.linalg.svdvals(adaptive_scale(M, 5 * a, 5 * b, 4))[:4]
    torch.testing.assert_close(got, math.sqrt(a * b) * S)


@pytest.mark.parametrize("p,q", [(9, 12), (20, 8), (5, 30), (3, 4)])
def test_adaptive_scale_has_rank_r_prime(p, q):
    M_hat = adaptive_scale(torch.randn(6, 6), p, q, 3)
    assert torch.linalg.matrix_rank(M_hat) == 3


def test_adaptive_scale_batches_over_leading_dims():
    M = torch.randn(3, 5, 5)
    got = adaptive_scale(M, 8, 3, 4)
    for b in range(3):
        torch.testing.assert_close(got[b], adaptive_scale(M[b], 8, 3, 4))


def test_gene_rank_from_ratio():
    assert gene_rank(4096, 11008, 0.23) ** 2 / (4096 * 11008) == pytest.approx(0.23, rel=1e-3)


def _weights(shapes):
    from methods.masa import AlignedWeight

    return [AlignedWeight(f"layers.{i}.up", i, "up", torch.zeros(o, n)) for i, (o, n) in enumerate(shapes)]


@pytest.mark.parametrize("size,check", [
    ("ratio", lambda r, w: r == {x.key: gene_rank(x.weight.shape[1], x.weight.shape[0], 0.23) for x in w}),
    ("rank:7", lambda r, w: set(r.values()) == {7}),
    # one common ratio sized so that all genes together hold ~N parameters (rounding of each r aside)
    ("total:2000", lambda r, w: sum(v * v for v in r.values()) == pytest.approx(2000, rel=0.05)),
    ("fraction:0.01", lambda r, w: sum(v * v for v in r.values()) == pytest.approx(0.01 * 250_000, rel=0.05)),
])
def test_each_reading_of_the_genes_size(size, check):
    """methods/masa.py GENE_SIZES: Table 5's per-weight ratio (default), a fixed rank, and L45's
    total (11.8M) or fraction of the source (0.17 %), on odd, non-square weights."""
    from methods.masa import sized_ranks

    weights = _weights([(97, 33), (33, 97), (120, 64), (64, 64)])
    r = sized_ranks(weights, size, 0.23, source_params=250_000)
    assert check(r, weights), r
    # the common ratio keeps each weight's r in proportion to sqrt(d_in d_out)
    if size.startswith(("total", "fraction")):
        ratios = [r[w.key] ** 2 / w.weight.numel() for w in weights]
        assert max(ratios) / min(ratios) < 1.5


@pytest.mark.parametrize("size", ["ratio:0.2", "rank", "rank:2.5", "rank:0", "total:x", "fraction:1.5", "params:9"])
def test_a_malformed_size_is_one_line(size):
    from harness.errors import HarnessError
    from methods.masa import parse_size

    with pytest.raises(HarnessError, match=f"masa: size '{size}'") as e:
        parse_size(size)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("shape,r", [((7, 5), 3), ((9, 13), 6), ((4, 4), 4)])
def test_spectral_reduction_mean_is_the_sum_over_its_terms(shape, r):
    """`spectral_reduction: mean` divides eq. 5's sum by its k = min(r, rank bound) terms (numpy's
    SVD as the reference), so lambda weighs the spectrum alike at every gene size."""
    import numpy as np

    from methods.masa import log_spectrum, log_spectrum_gap

    g = torch.Generator().manual_seed(5)
    W, M = torch.randn(*shape, generator=g, dtype=torch.float64), torch.randn(r, r, generator=g, dtype=torch.float64)
    k = min(r, *shape)
    ref = (np.log(np.linalg.svd(W.numpy(), compute_uv=False)[:k])
           - np.log(np.linalg.svd(M.numpy(), compute_uv=False)[:k])) ** 2
    spectrum = log_spectrum(W, r)
    assert float(log_spectrum_gap(spectrum, M, reduction="sum")) == pytest.approx(ref.sum(), rel=1e-9)
    assert float(log_spectrum_gap(spectrum, M, reduction="mean")) == pytest.approx(ref.mean(), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_backward_per_weight_gives_the_joint_losss_gradients(seed):
    """Per-weight backward (what extraction runs, one weight's graph at a time) against one backward
    of the joint loss L = sum L_out + lambda sum L_spec: identical gradients and logged losses, over
    odd shapes, unequal ranks and a routed expert that no token reached."""
    from methods.masa import aligned_backward, alignment_step, init_gene, log_spectrum

    g = torch.Generator().manual_seed(seed)
    shapes = {"l0.gate": (7, 5, 3), "l0.up": (7, 5, 2), "l0.down": (5, 7, 3), "l1.e2.gate": (6, 9, 4)}
    weights = {k: torch.randn(o, i, generator=g) for k, (o, i, _) in shapes.items()}
    inputs = {k: torch.randn(11, i, generator=g) for k, (o, i, _) in shapes.items()}
    inputs["l1.e2.gate"] = inputs["l1.e2.gate"][:0]  # no token routed to this expert
    spectra = {k: log_spectrum(weights[k], r) for k, (_, _, r) in shapes.items()}
    start = {k: init_gene(weights[k], r, g) for k, (_, _, r) in shapes.items()}

    joint = {k: torch.nn.Parameter(v.clone()) for k, v in start.items()}
    l_out, l_spec = alignment_step(joint, weights, spectra, inputs, 0.7)
    (l_out + 0.7 * l_spec).backward()
    split = {k: torch.nn.Parameter(v.clone()) for k, v in start.items()}
    s_out, s_spec = aligned_backward(split, weights, spectra, inputs, 0.7)
    for k in shapes:  # bit for bit: the extraction, and every number downstream, is unchanged
        assert torch.equal(split[k].grad, joint[k].grad), k
    assert torch.equal(s_out, l_out.detach()) and torch.equal(s_spec, l_spec.detach())


def test_a_bfloat16_sources_losses_are_its_upcast_values_in_float32():
    """`source_dtype: bfloat16` keeps W and the FFN inputs in bf16; the output loss upcasts them, so
    it equals the loss in M's precision on the same (rounded) values, not a bf16 computation."""
    from methods.masa import output_loss

    g = torch.Generator().manual_seed(3)
    W, x, M = torch.randn(10, 6, generator=g).bfloat16(), torch.randn(13, 6, generator=g).bfloat16(), \
        torch.randn(3, 3, generator=g)
    torch.testing.assert_close(output_loss(W, M, x), output_loss(W.float(), M, x.float()), rtol=0, atol=0)
    assert output_loss(W, M, x).dtype == M.dtype
