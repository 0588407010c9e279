"""`gan` — Goodfellow et al. 2014, with the MLP nets of the classic Keras MNIST example.

Algorithm (one step, k = 1):
    1. D ascends  log D(x) + log(1 - D(G(z)))        on a real batch and a fake batch;
    2. G ascends  log D(G(z))                          (the non-saturating generator loss),
       with D(G(z)) recomputed after D's update (never stale activations).

Accepts the tricks of Salimans et al. 2016 as options (see tricks.py): feature_matching,
minibatch_disc, historical_avg, virtual_bn, label_smoothing (real target; 0.9 = one-sided).
"""
from __future__ import annotations

from . import losses, tricks
from .base import Variant
from .registry import register


@register
class GAN(Variant):
    name = "gan"
    paper = "Goodfellow et al. 2014, Generative Adversarial Nets"
    summary = "MLP G and D, BCE (non-saturating G loss), Adam"
    # digits: FD 377 -> 106 and the largest class 22 % -> 15 % from 2,000 to 6,000 steps
    # (seed 0, about 2 minutes; docs/results.md)
    default_steps = {"image": 6000}
    defaults = dict(z_dim=100, lr=2e-4, beta1=0.5, beta2=0.999, toy_hidden=128, r1=0.0,
                    **tricks.OPTIONS)
    limits = dict(tricks.LIMITS, r1=">= 0")    # r1=γ: R1 penalty γ/2·E‖∇x D(x)‖² (losses.py)

    def build(self):
        c = self.config
        self.G, self.D = self.apply_tricks(*self.make_nets("mlp", toy_hidden=c["toy_hidden"]))
        self.opt_G, self.opt_D = self.adam(self.G), self.adam(self.D)

    def train_step(self, x, y=None):
        n, logs = x.shape[0], {}
        # 1. Discriminator: real vs. fake (G's output detached: this step moves D only).
        fake = self.G(self.sample_z(n)).detach()
        loss_D = losses.d_loss_gan(self.D(x), self.D(fake), self.config["label_smoothing"])
        if self.config["r1"]:
            loss_D = loss_D + losses.r1_penalty(self.D, x, self.config["r1"])
        loss_D = self.with_history("D", loss_D, logs)
        self.opt_D.zero_grad()                              # drop the last step's gradients
        loss_D.backward(inputs=list(self.D.parameters()))   # d loss_D / d D's weights
        self.opt_D.step()                                   # one Adam step of D
        # 2. Generator: fool the updated D (or match its mean features on real data).
        loss_G = self.generator_loss((x,), (self.G(self.sample_z(n)),), losses.g_loss_nonsaturating)
        loss_G = self.with_history("G", loss_G, logs)
        self.opt_G.zero_grad()
        # Through D to the fakes and into G; D's own weight gradients are never computed
        # (inputs=: only G's weights), so this step cannot move D.
        loss_G.backward(inputs=list(self.G.parameters()))
        self.opt_G.step()
        return logs

    def with_history(self, player: str, loss, logs: dict):
        """Logs the player's loss; with `historical_avg` λ > 0 (tricks.py) returns it plus
        λ‖θ − θ̄‖², the pull towards the running mean θ̄ of the player's past weights."""
        logs[f"loss_{player}"] = loss.data
        hist = getattr(self, f"hist_{player}", None)
        if hist is None:
            return loss
        hist.update()
        penalty = float(self.config["historical_avg"]) * hist.penalty()
        logs[f"hist_{player}"] = penalty.data
        return loss + penalty
