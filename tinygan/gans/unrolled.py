"""`unrolled` — Metz, Poole, Pfau & Sohl-Dickstein 2017, Unrolled Generative Adversarial Networks.

Algorithm (one step; f(θ_G, θ_D) = E_x log D(x) + E_z log(1 - D(G(z))), D ascends f, G descends):
    1. Unroll D:  θ_D^0 = θ_D,  θ_D^{k+1} = θ_D^k + η · Adam(df(θ_G, θ_D^k)/dθ_D^k),  k < K,
       on one batch x, z; each step written in the graph (Adam's moments, bias corrections and
       square root included), so θ_D^K is a differentiable function of θ_G.
    2. G descends the surrogate  f_K(θ_G, θ_D) = f(θ_G, θ_D^K(θ_G, θ_D)):
            θ_G ← θ_G - η_G · Adam(df_K/dθ_G)
       — the full derivative, through all K steps of D's optimisation (second order: D's
       gradient, differentiated), not the first-order term that holds θ_D^K fixed.
    3. D takes its ordinary step  θ_D ← θ_D^1  (the optimizer's real step on the same batch;
       the unrolled copies are thrown away).
G and D update from the same state (simultaneous), as in the paper's two update equations.

Defaults: the paper's 2-D mixture experiment (appendix A) — G and D ReLU MLPs with two hidden
layers of 128 units, z ~ N(0, I_256), Adam β1 = 0.5, G lr 1e-3, D lr 1e-4, K = 5; the paper
shows 25,000 steps on batches of 512 (its Figure 1); here 5000 steps (`--batch-size` is the
command line's); each G step costs ~K+1 D backward passes.  With K = 0, f_K = f: the plain
minimax GAN.
`g_loss=nonsaturating` swaps f_K for -E log D(G(z); θ_D^K) (Goodfellow's alternative).
"""
from __future__ import annotations

from ..autograd import Tensor, enable_grad, grad
from ..nn import functional_call
from . import losses
from .base import Variant
from .registry import register

# Where a weight's gradient has been exactly zero since the start (a dead ReLU unit), v = 0,
# and d sqrt(v)/dv = ∞ times dv/dg = 0 would make NaN.  This shift of v keeps that derivative
# finite; sqrt(1e-30) = 1e-15 is far below Adam's own eps, so the step is unchanged.
_SQRT_SHIFT = 1e-30


def adam_step_in_graph(params: list, grads: list, m: list, v: list, t: int, lr: float,
                       betas: tuple, eps: float, weight_decay: float = 0.0):
    """One Adam step (torch's rule, as tinygan.optim.Adam) written as graph ops: returns the
    new (params, m, v) as Tensors, differentiable w.r.t. everything they came from.
    `t` is the step number of this update (1 for the first)."""
    beta1, beta2 = betas
    bc1, bc2 = 1.0 - beta1 ** t, 1.0 - beta2 ** t
    new_p, new_m, new_v = [], [], []
    for p, g, m_i, v_i in zip(params, grads, m, v):
        if weight_decay:
            g = g + weight_decay * p
        m_i = beta1 * m_i + (1.0 - beta1) * g
        v_i = beta2 * v_i + (1.0 - beta2) * (g * g)
        denom = (v_i + _SQRT_SHIFT).sqrt() * (1.0 / bc2 ** 0.5) + eps
        new_p.append(p - (lr / bc1) * m_i / denom)
        new_m.append(m_i)
        new_v.append(v_i)
    return new_p, new_m, new_v


@register
class Unrolled(Variant):
    name = "unrolled"
    paper = "Metz et al. 2017, Unrolled Generative Adversarial Networks"
    summary = "G's loss through K Adam steps of D, differentiated (second order); MLPs, toys first"
    defaults = dict(z_dim=256, unroll=5, lr_G=1e-3, lr_D=1e-4, beta1=0.5, beta2=0.999,
                    toy_hidden=128, g_loss="minimax")
    limits = dict(unroll=">= 0", lr_G="> 0", lr_D="> 0", g_loss=("minimax", "nonsaturating"))
    data_kinds = ("toy",)
    default_steps = {"toy": 5000}     # the paper's figure: 25,000 (docs/unrolled.md: why)
    # Batch 128 (the paper's: 512): the default 5,000 steps at 64 cover 1, 0 and 5 of ring8's
    # 8 modes on seeds 0-2; at 128 the runs of docs/unrolled.md covered 8, 0 and 7 by step 4,500,
    # and the default command now covers 8, 1 and 2 at step 5,000 (docs/unrolled.md).
    default_batch_size = {"toy": 128}

    def build(self):
        c = self.config
        if not self.is_toy:
            raise ValueError(f"{self.name} trains on the 2-D toys only (the paper's mixture "
                             f"experiment): add --data ring8 (or grid25)")
        self.G, self.D = self.make_nets("mlp", toy_hidden=c["toy_hidden"])
        self.opt_G = self.adam(self.G, lr=c["lr_G"])
        self.opt_D = self.adam(self.D, lr=c["lr_D"])

    def d_loss(self, x: Tensor, fake: Tensor, theta: dict | None = None) -> Tensor:
        """-f: D's loss (BCE on real and fake), under the parameters `theta` if given."""
        D = (lambda a: functional_call(self.D, theta, (a,))) if theta else self.D
        return losses.d_loss_gan(D(x), D(fake))

    def unrolled_d(self, x: Tensor, fake: Tensor, k: int) -> dict:
        """θ_D^k as {name: Tensor}: k Adam steps of D on (x, fake), from D's weights and
        opt_D's moments, each step in the graph (create_graph=True)."""
        names = [n for n, _ in self.D.named_parameters()]
        params = [p for _, p in self.D.named_parameters()]
        group = self.opt_D.param_groups[0]
        # opt_D keys its state by position in the same order as D.parameters().
        state = [self.opt_D.state.get(i) for i in range(len(params))]
        t0 = state[0]["step"] if state[0] else 0
        m = [Tensor(s["exp_avg"]) if s else p.detach() * 0.0 for s, p in zip(state, params)]
        v = [Tensor(s["exp_avg_sq"]) if s else p.detach() * 0.0 for s, p in zip(state, params)]
        # D's gradients are part of θ_D^k's *value*: they are taken even where the caller
        # records no graph (sampling, finite differences).
        with enable_grad():
            for step in range(1, k + 1):
                loss = self.d_loss(x, fake, dict(zip(names, params)))
                grads = grad(loss, params, create_graph=True)
                params, m, v = adam_step_in_graph(params, grads, m, v, t0 + step, group["lr"],
                                                  group["betas"], group["eps"],
                                                  group["weight_decay"])
        return dict(zip(names, params))

    def generator_objective(self, x: Tensor, fake: Tensor, theta: dict) -> Tensor:
        """f_K to descend: f under θ_D^K (= -D's loss), or the non-saturating -log D(G(z))."""
        if self.config["g_loss"] == "nonsaturating":
            return losses.g_loss_nonsaturating(functional_call(self.D, theta, (fake,)))
        return -self.d_loss(x, fake, theta)

    def train_step(self, x, y=None):
        z = self.sample_z(x.shape[0])
        fake = self.G(z)
        # 1-2. G: its objective under D unrolled K steps, back-propagated through the unrolling.
        theta_K = self.unrolled_d(x, fake, int(self.config["unroll"]))
        loss_G = self.generator_objective(x, fake, theta_K)
        self.opt_G.zero_grad()
        loss_G.backward(inputs=list(self.G.parameters()))     # D's own weights: no gradient
        # 3. D: the ordinary Adam step on the same batch (the first unrolled step, for real),
        # on the fakes G made before its update: both players move from the same state.
        loss_D = self.d_loss(x, fake.detach())
        self.opt_D.zero_grad()
        loss_D.backward(inputs=list(self.D.parameters()))
        self.opt_G.step()
        self.opt_D.step()
        return {"loss_D": loss_D.data, "loss_G": loss_G.data}
