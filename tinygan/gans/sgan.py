"""`sgan` — the semi-supervised GAN of Salimans et al. 2016, "Improved Techniques for Training
GANs" (§5; the K+1-class idea is also Odena 2016's).  The product is the classifier D.

D has K outputs l_1..l_K, read as the logits of K + 1 classes whose (K+1)-th, "fake", logit is
fixed at 0.  Then p(y | x, real) = softmax(l)_y, and with Z(x) = Σ_k exp l_k(x) = exp lse(l),

    D(x) := p(real | x) = Z / (Z + 1),   −log D(x) = softplus(lse) − lse,
                                          −log(1 − D(x)) = softplus(lse).

Data: a labelled set (x_l, y) of a few digits a class, an unlabelled pool x_u, and noise z.
One training step:

    1. D descends  L_D = l_lab + w · ½ (l_unl + l_fake)  (fakes detached), where
         l_lab  = E_(x_l, y) [lse(l(x_l)) − l_y(x_l)]          cross-entropy over the K logits
         l_unl  = E_x_u [softplus(lse(l(x_u))) − lse(l(x_u))]   −log D(x_u): real is real
         l_fake = E_z [softplus(lse(l(G(z))))]                   −log(1 − D(G(z))): fake is fake
       (w = 1; the ½ averages the two halves of the GAN's cross-entropy, as improved-gan does).
    2. G descends the feature-matching loss  ‖E f(x_u) − E f(G(z))‖²  with fresh z, f = D's
       last hidden layer (the real side a constant) — not D's verdict: G that matches
       statistics of real data gives D the fakes that sharpen its class boundaries (§3.1).

Nets and recipe: improved-gan's MNIST code (sgan_nets.py: an MLP D with Gaussian noise on its
input and on every hidden layer, weight normalisation with data-dependent init; G an MLP
with batch norm and softplus), Adam(3e-3, β1 0.5) with the reference's ε (see `adam`),
batches of 100 unlabelled digits and all 100 labelled ones each step (improved-gan's
labelled batch of 100 is a permutation of its 100 labels; the order does not matter to a
mean).  The classifier is `D_avg`, a running average of D's weights (the reference tests
with one too).  Changed for a run of a few thousand steps: the average is exponential with
decay `ema` = 0.99 (the reference's 1 − 10⁻⁴ assumes 180,000 steps), the learning rate decays
linearly to 0 over the run (`lr_decay`), and G's output bias starts at the logit of the first
batch's mean pixel.

The data (`split_indices`): of the dataset (by default the 5,000 shipped digits), a held-out
test set of `test_per_class` digits a class (100: 1,000 digits) is set aside by a fixed seed
and never trained on; of the rest, `labels_per_class` a class (10: 100 labels), picked by
`label_seed`, keep their labels; every non-held-out digit (the labelled ones too) is in the
unlabelled pool.  The training loop draws its batches from the pool only (`training_data`),
which carries no labels at all.

Scaled down from the paper (60,000 digits, 300 epochs of 600 steps): 4,000 training digits
and 2,000 steps (3.5 CPU-minutes).  `tinygan eval RUN` reports the held-out accuracy and that
of `supervised_baseline`: the same D, init, optimizer, schedule and number of steps on the
100 labels alone.  Measured (seeds 0-2, docs/reading_list.md#sgan): 86.7 % (85.5-87.8) held
out against the baseline's 77.4 % (76.9-78.2) — short of the issue's 90 % and of half the
baseline's error.
"""
from __future__ import annotations

import numpy as np

from .. import backend, distributed
from .. import functional as F
from ..autograd import Tensor, no_grad
from ..data import Dataset
from . import tricks
from .base import Variant
from .registry import register
from .sgan_nets import Classifier, Generator

TEST_SEED = 2016           # the held-out set does not move with any option or run seed


# -- the losses -----------------------------------------------------------------------------
def labelled_loss(logits: Tensor, y: Tensor) -> Tensor:
    """E[lse(l) − l_y]: cross-entropy over the K real classes."""
    return F.cross_entropy(logits, y)


def unlabelled_loss(logits: Tensor) -> Tensor:
    """E[−log D(x)] on real data, D(x) = Z/(Z+1): E[softplus(lse) − lse]."""
    lse = F.logsumexp(logits, dim=1)
    return (F.softplus(lse) - lse).mean()


def fake_loss(logits: Tensor) -> Tensor:
    """E[−log(1 − D(G(z)))] = E[softplus(lse)]."""
    return F.softplus(F.logsumexp(logits, dim=1)).mean()


# -- the data -------------------------------------------------------------------------------
def split_indices(labels: np.ndarray, num_classes: int, labels_per_class: int = 10,
                  test_per_class: int = 100, label_seed: int = 0):
    """(labelled, pool, held_out) index arrays into a dataset with these labels.  held_out:
    `test_per_class` of each class, by the fixed TEST_SEED; labelled: `labels_per_class` of
    each class among the rest, by `label_seed`; pool: everything not held out, sorted."""
    labels = np.asarray(labels)
    held, lab = [], []
    test_rng = np.random.default_rng(TEST_SEED)
    label_rng = np.random.default_rng([label_seed, 1])
    for k in range(num_classes):
        idx = np.flatnonzero(labels == k)
        if len(idx) < test_per_class + labels_per_class:
            raise ValueError(f"sgan: class {k} has {len(idx)} examples, fewer than the "
                             f"{test_per_class} held out + {labels_per_class} labelled it needs")
        idx = test_rng.permutation(idx)
        held.append(idx[:test_per_class])
        lab.append(label_rng.permutation(idx[test_per_class:])[:labels_per_class])
    held_out = np.sort(np.concatenate(held))
    pool = np.setdiff1d(np.arange(len(labels)), held_out)
    return np.sort(np.concatenate(lab)), pool, held_out


def _split(dataset: Dataset, config: dict):
    if dataset.labels is None or dataset.kind != "image":
        raise ValueError(f"sgan needs labelled images, got {dataset.name}")
    return split_indices(dataset.labels, dataset.num_classes, config["labels_per_class"],
                         config["test_per_class"], config["label_seed"])


def held_out_set(dataset: Dataset, config: dict) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the held-out test digits, x in [-1, 1]."""
    _, _, held = _split(dataset, config)
    return dataset.batch(held)


# -- the classifier -------------------------------------------------------------------------
def to_pixels(x: Tensor) -> Tensor:
    """Data in [-1, 1] → pixels in [0, 1], the scale of improved-gan's data and noise levels."""
    return (x + 1.0) * 0.5


def predict(D: Classifier, x: np.ndarray, device: str = "cpu", batch: int = 500) -> np.ndarray:
    """D's class (largest logit) for each of x (in [-1, 1]); D in eval mode (no noise)."""
    mode = D.training
    D.eval()
    out = []
    try:
        with no_grad():
            for i in range(0, len(x), batch):
                xb = to_pixels(Tensor(backend.to_device(x[i:i + batch], device)))
                out.append(backend.as_numpy(D(xb).data).argmax(1))
    finally:
        D.train(mode)
    return np.concatenate(out)


def accuracy(D: Classifier, x: np.ndarray, y: np.ndarray, device: str = "cpu") -> float:
    """Share of x whose largest logit is its label y."""
    return float((predict(D, x, device) == y).mean())


def average_into(avg: Classifier, net: Classifier, decay: float) -> None:
    """avg ← decay · avg + (1 − decay) · net, every parameter and buffer: the running average
    of D's weights that improved-gan tests with (steps at a high learning rate jitter the
    weights; their average is the better classifier)."""
    live = dict(net.named_parameters())
    live.update(net.named_buffers())
    with no_grad():
        for name, a in list(avg.named_parameters()) + list(avg.named_buffers()):
            a.data[...] = decay * a.data + (1.0 - decay) * live[name].data


def make_classifier(data_shape: tuple, num_classes: int, config: dict) -> Classifier:
    return Classifier(int(np.prod(data_shape)), num_classes, hidden=config["d_hidden"],
                      input_noise=config["input_noise"], hidden_noise=config["hidden_noise"])


def adam(net, config: dict):
    """improved-gan's Adam divides by sqrt(v̂ + 1e-8): ε = 1e-4 outside the root, not torch's
    1e-8, so parameters with tiny gradients (the weight-normalised directions V) move slowly."""
    from ..optim import Adam
    return Adam(net.parameters(), lr=config["lr"], betas=(config["beta1"], config["beta2"]),
                eps=config["adam_eps"])


@register
class SGAN(Variant):
    name = "sgan"
    paper = "Salimans et al. 2016, Improved Techniques for Training GANs (semi-supervised)"
    summary = ("K-logit D as a (K+1)-class classifier: CE on 100 labels, lse/softplus real-vs-fake "
               "on the rest; G by feature matching; the product is D")
    uses_labels = True
    data_kinds = ("image",)
    default_steps = {"image": 2000}
    default_batch_size = {"image": 100}
    defaults = dict(z_dim=100, d_hidden=(1000, 500, 250, 250, 250), g_hidden=(500, 500), lr=3e-3, beta1=0.5, beta2=0.999, labels_per_class=10,
                    test_per_class=100, label_seed=0, unlabeled_weight=1.0, input_noise=0.3,
                    hidden_noise=0.5, adam_eps=1e-4, ema=0.99, lr_decay="linear")
    limits = dict(g_hidden=">= 1", labels_per_class=">= 1", test_per_class=">= 1", label_seed=">= 0",
                  unlabeled_weight=">= 0", input_noise=">= 0", hidden_noise=">= 0",
                  adam_eps="> 0", ema="[0, 1)", lr_decay=("linear", "none"))

    def build(self):
        c = self.config
        self.D = make_classifier(self.data_shape, self.num_classes, c)
        self.D_avg = make_classifier(self.data_shape, self.num_classes, c)   # the classifier
        self.G = Generator(self.z_dim, self.data_shape, hidden=c["g_hidden"])
        self.opt_D, self.opt_G = adam(self.D, c), adam(self.G, c)
        self.x_lab = self.y_lab = None

    # -- data -----------------------------------------------------------------------------
    def training_data(self, dataset: Dataset) -> Dataset:
        """The unlabelled pool, without labels, for the loop's batches; keeps the labelled set."""
        lab, pool, _ = _split(dataset, self.config)
        x, y = dataset.batch(lab)
        self.x_lab = Tensor(backend.to_device(x, self.device))
        self.y_lab = Tensor(backend.to_device(y, self.device))
        return Dataset(f"{dataset.name} (unlabelled pool)", dataset.data[pool],
                       source=f"{len(pool)} of {dataset.source or dataset.name}, labels dropped")

    def to_net(self, x):
        return to_pixels(x)

    def from_net(self, x):
        return x * 2.0 - 1.0

    def sample_z(self, n: int) -> Tensor:
        """z ~ U(0, 1)^z_dim, as improved-gan's G."""
        rng = backend.get_rng(self.device)
        return self.per_sample(n, lambda m: Tensor(rng.random((m, self.z_dim), dtype=np.float32)))

    def fixed_noise(self, n: int, seed: int = 1234) -> Tensor:
        z = np.random.default_rng(seed).random((n, self.z_dim)).astype(np.float32)
        return Tensor(backend.to_device(z, self.device))

    # -- the algorithm --------------------------------------------------------------------
    def train_step(self, x, y=None):
        if self.x_lab is None:
            raise ValueError("sgan.train_step: no labelled set; call training_data(dataset) first")
        c, n, x = self.config, x.shape[0], self.to_net(x)
        if not float(backend.as_numpy(self.D.initialised.data)):
            self.D.init_from_data(x)                 # data-dependent init, on the first batch
            self.D_avg.load_state_dict(self.D.state_dict())
            self.G.init_from_data(x)
            # Under mpiexec each rank saw its own slice: rank 0's init is every rank's.
            distributed.broadcast_([t.data for m in (self.D, self.D_avg, self.G)
                                    for t in (*m.parameters(), *m.buffers()) if t is not None])
        # 1. D: labels on the labelled set, real on the pool, fake on G's samples.
        fake = self.G(self.sample_z(n)).detach()
        l_lab = labelled_loss(self.D(self.to_net(self.x_lab)), self.y_lab)
        l_unl = unlabelled_loss(self.D(x))
        l_fake = fake_loss(self.D(fake))
        loss_D = l_lab + c["unlabeled_weight"] * 0.5 * (l_unl + l_fake)
        if c["lr_decay"] == "linear":
            self.decayed_lr(self.opt_D, self.opt_G)
        logs = self.update("D", loss_D)
        average_into(self.D_avg, self.D, c["ema"])
        # 2. G: match the mean of D's last hidden layer on real and on fresh fakes.
        with no_grad():
            f_real = self.D.features(x)
        loss_G = tricks.feature_matching_loss(f_real, self.D.features(self.G(self.sample_z(n))))
        return {**logs, **self.update("G", loss_G), "loss_lab": l_lab.data,
                "loss_unl": l_unl.data, "loss_fake": l_fake.data}

    # -- the product ----------------------------------------------------------------------
    def classifier_report(self, dataset: Dataset, steps: int, seed: int = 0) -> dict:
        """Held-out accuracy of D and of `supervised_baseline` trained for `steps` steps."""
        x, y = held_out_set(dataset, self.config)
        hit = predict(self.D_avg, x, self.device) == y
        acc = float(hit.mean())
        base = accuracy(supervised_baseline(self, dataset, steps, seed), x, y, self.device)
        per_class = [round(float(hit[y == k].mean()), 4) for k in range(self.num_classes)]
        return {"test_accuracy": round(acc, 4), "test_error": round(1 - acc, 4),
                "test_accuracy_per_class": per_class,
                "baseline_test_accuracy": round(base, 4), "baseline_test_error": round(1 - base, 4),
                "n_test": int(len(y)), "n_labels": int(self.config["labels_per_class"]
                                                      * self.num_classes),
                "baseline_steps": int(steps)}


def supervised_baseline(variant: SGAN, dataset: Dataset, steps: int, seed: int = 0) -> Classifier:
    """The same D (nets, noise, data-dependent init, Adam and its settings) trained `steps`
    steps on the labelled set alone, l_lab only: what the unlabelled data and G add is the
    difference.  Deterministic: seeded by `seed` (the library's generator is reseeded)."""
    c, dev = variant.config, variant.device
    backend.manual_seed(seed)
    lab, _, _ = _split(dataset, c)
    x, y = dataset.batch(lab)
    x = to_pixels(Tensor(backend.to_device(x, dev)))
    y = Tensor(backend.to_device(y, dev))
    D = make_classifier(variant.data_shape, variant.num_classes, c).to(dev)
    D.init_from_data(x)
    D_avg = make_classifier(variant.data_shape, variant.num_classes, c).to(dev)
    D_avg.load_state_dict(D.state_dict())
    opt = adam(D, c)
    for t in range(int(steps)):
        for group in opt.param_groups:                    # the variant's schedule
            group["lr"] = c["lr"] * ((1.0 - t / steps) if c["lr_decay"] == "linear" else 1.0)
        loss = labelled_loss(D(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        average_into(D_avg, D, c["ema"])
    return D_avg
