"""What every GAN variant shares: config, nets/optimizers bookkeeping, latent noise, sampling.

A variant subclass reads like its paper's algorithm box:

    @register
    class MyGAN(Variant):
        name, paper = "mygan", "Someone et al. 2016"
        defaults = dict(z_dim=100, lr=2e-4, ...)
        limits = dict(...)            # ranges of its own options (options.py); checked on init

        def build(self):              # the nets and their optimizers
            self.G, self.D = ...
            self.opt_G, self.opt_D = ...

        def train_step(self, x, y=None) -> dict:
            ...                       # the losses and one update of each player
            return {"loss_D": loss_D.data, "loss_G": loss_G.data}

A variant's `train_step` returns its losses as 0-d arrays, left on the device: each
`loss.item()` would make the CPU wait for the GPU to finish everything queued so far.  The
base class wraps it, so that callers get `{name: float}` all the same, copied to the host in
ONE transfer at the end of the step (`backend.fetch_scalars`).  The variant's own function,
device scalars and all, stays callable as `train_step_on_device` (for a caller that fetches
less often, or checks that nothing inside a step synchronises).

Defaults per kind of data.  One set of defaults rarely suits both 28×28 digits and 2-D toys,
so a variant may give, beside `defaults`, the recipe it is best at on each kind:

    recipes = {"toy": dict(z_dim=2, toy_hidden=512), "image": dict(lr=2e-4)}
    default_steps = {"toy": 20000, "image": 2000}       # `tinygan train` without --steps
    default_batch_size = {"toy": 256}                   # without --batch-size (else 64)

A recipe entry overrides `defaults` for that kind of data; the user's `config` (`--set`)
overrides both.  `defaults_for(kind)` is the result, `check_config(config, kind)` checks
against it, and the constructor knows the kind from the data's shape (1-D samples: "toy").
One data set may need more than its kind's recipe (grid25's 25 modes are harder than ring8's
8): a key of these three tables may also name a data set, whose entry applies on top of its
kind's — `recipes = {"toy": {...}, "grid25": dict(toy_hidden=256)}`, `default_steps =
{"toy": 20000, "grid25": 40000}` — when the constructor (or `defaults_for`) is told the data.
The run's checkpoint saves the full config it trained with, so a resumed run keeps its
values even if a recipe changes later.  Recipes are checked when the class is defined: a
name that is not in `defaults`, or a value out of its option's range, fails at import.

Every `Module` and `Optimizer` attribute is found by the base class, so checkpoints, device
moves and train/eval switches need no code in the variant.

The training tricks of Salimans et al. 2016 (tricks.py) are wired in here once: a variant
that merges `tricks.OPTIONS` into its defaults calls `apply_tricks(G, D)` in `build()`, and
in `train_step` uses `update(player, loss)` and `generator_loss(real, fake, adversarial)`.
"""
from __future__ import annotations

import contextlib
import difflib
import functools

import numpy as np

from .. import backend, distributed
from ..autograd import Tensor, no_grad
from ..nn import Module, SyncBatchNorm
from ..optim import Optimizer
from . import tricks
from .options import options_of


# Options every variant takes, appended to its `defaults` when the class is defined.
#   sync_bn: batch norm with the statistics of the global batch over all ranks under mpiexec
#            (nn.SyncBatchNorm); in one process it changes nothing (docs/distributed.md)
COMMON_DEFAULTS = dict(sync_bn=False)


class Variant:
    name: str = ""
    paper: str = ""
    summary: str = ""
    defaults: dict = {}
    limits: dict = {}                      # ranges beyond options.COMMON's: {"levels": ">= 1"}
    data_kinds: tuple = ("image", "toy")   # what data it can train on
    needs_labels: bool = False
    default_data: str | None = None        # `tinygan train` without --data (None: mnist)
    # Trains with the dataset's labels (num_classes known) but is not class-conditional: G
    # draws without a label (sgan, whose product is a classifier).
    uses_labels: bool = False
    recipes: dict = {}                     # {"toy": {...}, "image": {...}, "grid25": {...}}
    default_steps: dict = {}               # {"image": N, "toy": M}: `tinygan train` without --steps
    default_batch_size: dict = {}          # {"toy": 256}: without --batch-size (else 64)
    # Options added after runs were saved without them, each with the value that reproduces
    # those runs: a saved config is complete, so a key it lacks predates the option.
    legacy_options: dict = {}
    total_steps: int | None = None         # the run's length, set by train(); see decayed_lr

    def __init__(self, data_shape: tuple, num_classes: int | None = None,
                 config: dict | None = None, device: str = "cpu", data: str | None = None):
        self.data_shape = tuple(data_shape)
        self.num_classes = num_classes
        self.device = backend.check_device(device)
        self.is_toy = len(self.data_shape) == 1
        self.data_kind = "toy" if self.is_toy else "image"
        self.data_name = data                # the data set's own recipe applies when it is known
        self.config = self.check_config(config, self.data_kind, data)
        if self.needs_labels and not num_classes:
            raise ValueError(f"{self.name} is class-conditional and needs a labelled dataset")
        if self.uses_labels and not num_classes:
            raise ValueError(f"{self.name} learns from labels and needs a labelled dataset")
        if self.is_toy and "toy" not in self.data_kinds:
            raise ValueError(f"{self.name} trains on image data only, got samples of shape {self.data_shape}")
        self.build()
        if self.config.get("sync_bn"):
            for k, m in self.nets().items():       # same parameters: the optimizers keep them
                setattr(self, k, SyncBatchNorm.convert_sync_batchnorm(m))
        for m in self.nets().values():
            m.to(self.device)
        self.steps_done = 0

    @classmethod
    def options(cls) -> dict:
        """{name: options.Option}: each option's type and range (`tinygan variants -v`)."""
        return options_of(cls.defaults, cls.limits)

    @classmethod
    def defaults_for(cls, kind: str | None, data: str | None = None) -> dict:
        """The defaults on data of this kind ("toy" or "image"): `defaults` updated with that
        kind's recipe, then with the recipe of the data set `data` if it has one.  None: the
        plain `defaults`."""
        if kind is not None and kind not in ("toy", "image"):
            raise ValueError(f"data kind must be 'toy' or 'image', got {kind!r}")
        return {**cls.defaults, **cls.recipes.get(kind, {}), **cls.recipes.get(data, {})}

    @classmethod
    def for_data(cls, table: dict, kind: str, data: str | None = None, fallback=None):
        """The entry of a per-data table (`default_steps`, `default_batch_size`) for the data
        set `data` of this kind: its own entry, else its kind's, else `fallback`."""
        return table.get(data, table.get(kind, fallback))

    @classmethod
    def saved_config(cls, config: dict | None) -> dict | None:
        """A config read from a checkpoint, completed with `legacy_options` where it predates
        them (so an old run resumes, and loads, as it was trained)."""
        return None if config is None else {**cls.legacy_options, **config}

    @classmethod
    def check_config(cls, config: dict | None, kind: str | None = None, data: str | None = None) -> dict:
        """`defaults_for(kind, data)` updated with `config`, each value checked against its
        option's type and range (text from `--set` is read as that type).  ValueError for an
        unknown name or a bad value, before anything is built.  Without `kind` (not yet known)
        the names and values are checked all the same, against the plain defaults."""
        specs, out = cls.options(), cls.defaults_for(kind, data)
        for k, v in (config or {}).items():
            if k not in specs:
                close = difflib.get_close_matches(k, list(specs), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ValueError(f"unknown option {k!r} for {cls.name}{hint}; known: "
                                 f"{', '.join(sorted(specs))}")
            out[k] = specs[k].check(v)
        return out

    @classmethod
    def _check_recipes(cls) -> None:
        """A recipe names only known options, with values in range, for kinds the variant trains
        on: checked once, when the class is defined."""
        from ..data.toys import TOYS
        for table in ("recipes", "default_steps", "default_batch_size"):
            for key in getattr(cls, table):
                # a data set's own entry: the 2-D toys by name (images share their kind's)
                kind = "toy" if key in TOYS else key
                if kind not in cls.data_kinds:
                    raise TypeError(f"{cls.__name__}.{table}: {key!r} is not one of its "
                                    f"data kinds {cls.data_kinds}"
                                    + (" nor a 2-D toy's name" if "toy" in cls.data_kinds else ""))
        specs = cls.options()
        for kind, recipe in cls.recipes.items():
            for k, v in recipe.items():
                if k not in specs:
                    raise TypeError(f"{cls.__name__}.recipes[{kind!r}]: {k!r} is not in its defaults")
                specs[k].check(v)

    # -- to be written by each variant -------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def training_data(self, dataset):
        """The dataset the training loop draws its batches from: `dataset` itself, unless the
        variant keeps part of it apart (sgan: a labelled set it holds, a held-out test set)."""
        return dataset

    def train_step(self, x: Tensor, y: Tensor | None = None) -> dict:
        """One training step on the batch x (labels y).  Written by each variant to return
        {name: 0-d array}; called, it returns {name: float} (see the module docstring)."""
        raise NotImplementedError

    def train_step_on_device(self, x: Tensor, y: Tensor | None = None) -> dict:
        """The variant's `train_step` itself: {name: 0-d array}, nothing fetched."""
        return type(self)._device_step(self, x, y)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.defaults = {**cls.defaults, **{k: v for k, v in COMMON_DEFAULTS.items()
                                           if k not in cls.defaults}}
        cls._check_recipes()
        step = cls.__dict__.get("train_step")
        if step is None:                       # inherited: already wrapped by the parent
            return
        cls._device_step = step

        @functools.wraps(step)
        def train_step(self, x, y=None):
            return backend.fetch_scalars(cls._device_step(self, x, y))
        cls.train_step = train_step

    # -- image-to-image variants (pix2pix, cyclegan, srgan) ---------------------------------------
    # Their data is a two-domain dataset (tinygan/data/pairs.py): a batch holds A in channels
    # [:C] and B in [C:].
    def translate(self, x: np.ndarray, direction: str = "AtoB") -> np.ndarray:
        """Images x of the source domain, float32 (N, C, H, W) in [-1, 1] at the run's stored
        size, → the generator's float32 outputs in [-1, 1]: nets in eval mode, no graph.
        `tinygan translate` calls it; variants that translate override it."""
        raise ValueError(f"{self.name} does not translate images (it generates them from "
                         f"noise): translate takes a pix2pix, cyclegan or srgan run")

    def evaluate(self, dataset) -> dict | None:
        """Variant-specific metrics of `tinygan eval` on the run's `dataset` (None: the generic
        sample metrics)."""
        return None

    def sample_grid(self, dataset) -> tuple | None:
        """(images (n, C, H, W) in [-1, 1], images per row) for the training run's sample PNGs,
        or None for the usual grid of samples from fixed noise."""
        return None

    @contextlib.contextmanager
    def evaluating(self):
        """Nets in eval mode, no graph recorded; each net's mode restored on the way out."""
        modes = {k: m.training for k, m in self.nets().items()}
        self.eval()
        try:
            with no_grad():
                yield
        finally:
            for k, m in self.nets().items():
                m.train(modes[k])

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Samples for latent batch `z` (and labels `y` for conditional variants)."""
        out = self.G(z, y) if self.needs_labels else self.G(z)
        return self.from_net(out)

    def decayed_lr(self, *optimizers) -> None:
        """Set the optimizers' learning rate to the config's `lr` × (1 - t/T) at step t of a
        run of T steps (`total_steps`, which train() sets): the linear decay to zero of the
        WGAN-GP authors' code.  Late small steps let G settle on the modes instead of jittering
        around them at the full rate.  Without a known run length the rate stays `lr`.  A run
        taken further (`--resume --steps` more) decays over its new length from where it is."""
        scale = 1.0
        if self.total_steps:
            scale = max(0.0, 1.0 - self.steps_done / self.total_steps)
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = self.config["lr"] * scale

    def adam(self, *nets, lr: float | None = None):
        """Adam over the parameters of `nets` (one optimizer for all of them), with the
        config's `lr` (unless given), `beta1` and `beta2` — the optimizer nearly every GAN
        paper since DCGAN uses."""
        from ..optim import Adam
        c = self.config
        params = [p for net in nets for p in net.parameters()]
        return Adam(params, lr=c["lr"] if lr is None else lr, betas=(c["beta1"], c["beta2"]))

    # -- the standard nets, shared by most variants ---------------------------------------------
    def make_nets(self, arch: str = "dcgan", d_batch_norm: bool = True, g_extra: int = 0,
                  d_extra: int = 0, toy_hidden: int = 128, toy_layers: int = 2):
        """(G, D) for this data.  Toys: ReLU MLPs, `toy_layers` hidden layers of `toy_hidden`
        units each.  Images: `arch` "mlp" (the Keras MNIST nets) or "dcgan" (the all-conv
        nets, data padded to a power of two).  `g_extra` widens
        G's input and `d_extra` D's input (features for MLPs, channels for conv nets) — room
        for the label or code of conditional variants."""
        from .nets import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator,
                           dcgan_init_, flat_size, padded_size)
        c, g_in = self.config, self.z_dim + g_extra
        self.pad_to = None
        if self.is_toy:
            return (MLPGenerator(self.z_dim, self.data_shape, hidden=(toy_hidden,) * toy_layers,
                                 batch_norm=False, slope=0, out_tanh=False, in_dim=g_in),
                    MLPDiscriminator(self.data_shape, hidden=(toy_hidden,) * toy_layers, slope=0,
                                     in_dim=flat_size(self.data_shape) + d_extra))
        if arch == "mlp":
            return (MLPGenerator(self.z_dim, self.data_shape, in_dim=g_in),
                    MLPDiscriminator(self.data_shape, in_dim=flat_size(self.data_shape) + d_extra))
        if arch != "dcgan":
            raise ValueError(f"{self.name}: unknown architecture {arch!r} (mlp or dcgan)")
        self.pad_to = padded_size(max(self.data_shape[1:]))
        C = self.data_shape[0]
        G = DCGANGenerator(self.z_dim, C, self.pad_to, c.get("ngf", 64), in_dim=g_in)
        D = DCGANDiscriminator(C, self.pad_to, c.get("ndf", 64), batch_norm=d_batch_norm,
                               in_channels=C + d_extra)
        return dcgan_init_(G), dcgan_init_(D)

    def to_net(self, x: Tensor) -> Tensor:
        """Real data as the nets see it (28×28 digits padded to 32×32 for the conv nets)."""
        from .nets import pad_images
        return x if getattr(self, "pad_to", None) is None else pad_images(x, self.pad_to)

    def from_net(self, x: Tensor) -> Tensor:
        from .nets import crop_images
        return x if getattr(self, "pad_to", None) is None else crop_images(x, *self.data_shape[1:])

    # -- the training tricks (Salimans et al. 2016), for variants with tricks.OPTIONS -----------
    def apply_tricks(self, G, D, g_ref_input=None):
        """(G, D) with the structural tricks the config asks for; call in `build()` before the
        optimizers are made.  `minibatch_disc` extends D's last layer, `virtual_bn` swaps G's
        batch norms for VirtualBatchNorm on a fixed reference input (default: fixed noise
        z_ref; conditional variants pass the full input of their net), `historical_avg` > 0
        starts the running averages of both players' parameters (as `hist_G`, `hist_D`)."""
        c = self.config
        if c.get("minibatch_disc"):
            tricks.add_minibatch_discrimination(D, int(c["mbd_kernels"]), int(c["mbd_dim"]))
        if c.get("virtual_bn"):
            if g_ref_input is None:
                g_ref_input = self.fixed_noise(int(c["vbn_ref_size"]), seed=4321)
            G = tricks.use_virtual_batch_norm(G, g_ref_input)
        if float(c.get("historical_avg", 0.0)) > 0:
            self.hist_G = tricks.HistoricalAverage(G.parameters())
            self.hist_D = tricks.HistoricalAverage(D.parameters())
        return G, D

    def update(self, player: str, loss: Tensor) -> dict:
        """One optimizer step of `player` ("G", "D", or any X with an `opt_X`) on `loss`,
        plus the historical averaging penalty λ‖θ − θ̄‖² when it is on.  Returns the values
        to log, as 0-d arrays on the device (no `.item()`: see the module docstring)."""
        opt = getattr(self, "opt_" + player)
        logs = {f"loss_{player}": loss.data}
        hist = getattr(self, "hist_" + player, None)
        if hist is not None:
            hist.update()
            penalty = float(self.config["historical_avg"]) * hist.penalty()
            loss = loss + penalty
            logs[f"hist_{player}"] = penalty.data
        opt.zero_grad()
        # Only the player's own parameters: a G update back-propagates through D to the
        # fakes but never computes D's weight gradients (torch: backward(inputs=...)).
        loss.backward(inputs=[p for group in opt.param_groups for p in group["params"]])
        opt.step()
        return logs

    def generator_loss(self, real: tuple, fake: tuple, adversarial) -> Tensor:
        """G's loss: `adversarial(D(*fake))`, or with `feature_matching` the distance between
        the mean D features of a real batch and of the fakes.  `real`/`fake` are D's inputs:
        (x,) or (x, y) for conditional variants; the fakes must carry G's graph."""
        if self.config.get("feature_matching"):
            with no_grad():
                f_real = self.D.features(*real)
            return tricks.feature_matching_loss(f_real, self.D.features(*fake))
        return adversarial(self.D(*fake))

    # -- shared machinery ----------------------------------------------------------------------
    @property
    def z_dim(self) -> int:
        if "z_dim" not in self.config:
            raise ValueError(f"{self.name} has no latent noise z: it translates images "
                             f"(use `tinygan translate`)")
        return int(self.config["z_dim"])

    def sample_z(self, n: int) -> Tensor:
        """Latent noise z ~ N(0, I) from the library's seeded generator."""
        from ..tensor_factories import randn
        return self.per_sample(n, lambda m: randn(m, self.z_dim, device=self.device))

    @staticmethod
    def per_sample(n: int, draw):
        """`draw(n)`: random numbers for n samples of a batch.  Under `mpiexec` in a training
        step, each rank's slice of what `draw` gives for the global batch (every rank draws
        it all and keeps its own part: `distributed.per_sample`), so that no two ranks share
        noise and N ranks see the numbers one process with the whole batch would."""
        return distributed.per_sample(n, draw)

    def fixed_noise(self, n: int, seed: int = 1234) -> Tensor:
        """A latent batch that never changes during a run (for comparable sample grids)."""
        z = np.random.default_rng(seed).standard_normal((n, self.z_dim)).astype(np.float32)
        return Tensor(backend.to_device(z, self.device))

    def fixed_labels(self, n: int) -> Tensor | None:
        if not self.num_classes:
            return None
        return Tensor(backend.to_device(np.arange(n) % self.num_classes, self.device))

    # Samples generated per forward pass.  All z are drawn first, so the chunks change no sample;
    # they bound the memory: `tinygan eval`'s 2,000 digits through lapgan's nets in one batch
    # peaked at 13 GB (the convolutions' column buffers grow with the batch).
    sample_chunk = 250

    def sample(self, n: int, z: Tensor | None = None, y: Tensor | None = None) -> np.ndarray:
        """n samples as a host array in [-1, 1], nets in eval mode, no graph recorded."""
        z = self.sample_z(n) if z is None else z
        if y is None and self.needs_labels:
            y = self.fixed_labels(n)
        modes = {k: m.training for k, m in self.nets().items()}
        self.eval()
        try:
            with no_grad():
                parts = [backend.as_numpy(self.generate(z[i:i + self.sample_chunk],
                                                        None if y is None else y[i:i + self.sample_chunk]).data)
                         for i in range(0, max(z.shape[0], 1), self.sample_chunk)]
        finally:
            for k, m in self.nets().items():
                m.train(modes[k])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def nets(self) -> dict:
        return {k: v for k, v in vars(self).items() if isinstance(v, Module)}

    def optimizers(self) -> dict:
        return {k: v for k, v in vars(self).items() if isinstance(v, Optimizer)}

    def train(self, mode: bool = True):
        for m in self.nets().values():
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def parameter_counts(self) -> dict:
        return {k: int(sum(p.numel() for p in m.parameters())) for k, m in self.nets().items()}

    def state_dict(self) -> dict:
        return {"nets": {k: m.state_dict() for k, m in self.nets().items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
                "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        nets, opts = self.nets(), self.optimizers()
        if set(state["nets"]) != set(nets):
            raise ValueError(f"{self.name}: checkpoint holds nets {sorted(state['nets'])}, "
                             f"this variant has {sorted(nets)}")
        for k, m in nets.items():
            m.load_state_dict(state["nets"][k])
        for k, o in opts.items():
            o.load_state_dict(state["optimizers"][k])
        self.steps_done = int(state.get("steps_done", 0))

    def describe(self) -> str:
        counts = ", ".join(f"{k}: {v:,} params" for k, v in self.parameter_counts().items())
        return f"{self.name} ({self.paper}) — {counts}"
