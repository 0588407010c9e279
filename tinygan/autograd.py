"""Tensor, Function and the backward engine: all of reverse-mode autodiff in one file.

How it works, in four sentences.  A `Function` computes its forward on raw arrays and, when
any input requires a gradient, records itself as the `creator` of its outputs.  The graph is
therefore a DAG of Functions linked through Tensors; each node carries a `generation` (one
more than its deepest input) so that processing nodes from the highest generation down is a
valid reverse topological order.  `backward` walks that order with a heap (no recursion, each
node once) and calls every Function's `backward`, which is written with differentiable ops:
run with grad mode on (`create_graph=True`), the backward pass records a graph of its own and
can be differentiated again — that is all the gradient penalty of WGAN-GP needs.
"""
from __future__ import annotations

import functools
import heapq
import threading
import weakref

import numpy as np

from . import backend


# ---------------------------------------------------------------------------------------
# Grad mode: thread-local, switched with context managers (never a global class attribute).

class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _grad_mode.enabled


class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        self.prev = _grad_mode.enabled
        _grad_mode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _grad_mode.enabled = self.prev
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


class no_grad(set_grad_enabled):
    """`with tinygan.no_grad():` — ops inside record nothing (inference, optimizer steps)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    def __init__(self):
        super().__init__(True)


def _ops():
    """The functional package, imported on first use (it imports this module)."""
    from . import functional
    return functional


def _is_array(x) -> bool:
    return isinstance(x, np.ndarray) or type(x).__module__.startswith("cupy")


# ---------------------------------------------------------------------------------------
# Tensor

class Tensor:
    """An array (`numpy.ndarray` or `cupy.ndarray`) plus what autograd needs to know about it."""

    __array_priority__ = 1000      # so that `ndarray + Tensor` calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.data
        if not _is_array(data):
            data = np.asarray(data)
        self.data = data
        self.grad: Tensor | None = None
        self.creator: Function | None = None
        self.generation = 0
        self._requires_grad = False
        if requires_grad:
            self.requires_grad = True

    # -- autograd attributes ------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool):
        if self.creator is not None:
            raise RuntimeError("requires_grad can only be changed on leaf tensors "
                               "(this one was produced by an op); use .detach() first")
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.data.dtype}")
        self._requires_grad = bool(flag)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        self.requires_grad = flag
        return self

    @property
    def is_leaf(self) -> bool:
        return self.creator is None

    # -- array attributes -----------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> "backend.device":
        """`device("cpu")` or `device("cuda")`: equal to the string, with torch's `.type`."""
        return backend.device_object(self.data)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = ", device='cuda'" if self.device == "cuda" else ""
        body = np.array2string(backend.as_numpy(self.data), precision=4, separator=", ",
                               prefix="tensor(")
        return f"tensor({body}{dev}{grad})"

    # -- conversions ------------------------------------------------------------------------
    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, shape is {self.shape}")
        return self.data.reshape(()).item()

    def numpy(self) -> np.ndarray:
        """A host NumPy array (copied off the GPU if needed).  Refuses tensors in a graph."""
        if self.requires_grad:
            raise RuntimeError("numpy(): call .detach().numpy() on a tensor that requires grad")
        return backend.as_numpy(self.data)

    def tolist(self):
        return backend.as_numpy(self.data).tolist()

    def to(self, device=None, dtype=None) -> "Tensor":
        """This tensor on `device` ("cpu", "cuda" or a `tinygan.device`) and/or as `dtype`:
        `to(device)`, `to(dtype)`, `to(device, dtype)`, as in torch.  Differentiable (the
        gradient goes back to the source device and dtype); self when nothing changes."""
        device, dtype = backend.to_arguments(device, dtype)
        out = self
        if device is not None and device != out.device:
            out = _ops().to_device(out, device)
        if dtype is not None and dtype != out.dtype:
            out = out.type(dtype)
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        return self.type(np.float32)

    def double(self) -> "Tensor":
        return self.type(np.float64)

    def type(self, dtype) -> "Tensor":
        return _ops().astype(self, dtype)

    # -- in-place initialisers (torch's normal_, uniform_, fill_, zero_, copy_) ----------------
    # Each writes into `self.data` (the same array object: views and Parameters sharing it see
    # the change) and returns self.  tinygan records no in-place op in a graph, so, as torch
    # does for a leaf that requires grad, they refuse such a tensor while grad mode is on:
    # initialise parameters with `tinygan.nn.init` or inside `with tinygan.no_grad():`.

    def _check_inplace(self, opname: str) -> None:
        if not (self._requires_grad and _grad_mode.enabled):
            return
        if self.creator is None:
            raise RuntimeError(f"{opname}: a leaf Tensor that requires grad cannot be changed in "
                               f"place while grad mode is on (as in torch); use "
                               f"tinygan.nn.init, or call it inside `with tinygan.no_grad():`")
        raise RuntimeError(f"{opname}: this tensor is the output of an op that requires grad, "
                           f"and tinygan records no in-place op in the graph; write the new "
                           f"value as an out-of-place expression")

    def _random_(self, opname: str, draw):
        """self.data[...] = draw(rng, dtype): random values from the seeded generator of this
        tensor's device (`tinygan.manual_seed`).  Half precision is drawn in float64."""
        self._check_inplace(opname)
        if self.dtype.kind != "f":
            raise TypeError(f"{opname}: expects a floating-point tensor, got {self.dtype}")
        dtype = self.dtype if self.dtype.itemsize >= 4 else np.float64
        self.data[...] = draw(backend.get_rng(self.device), dtype)
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> "Tensor":
        """Fill with samples of N(mean, std²)."""
        if not std >= 0:
            raise ValueError(f"normal_: std must be >= 0, got {std}")
        return self._random_("normal_", lambda rng, dtype:
                             mean + std * rng.standard_normal(self.shape, dtype=dtype))

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> "Tensor":
        """Fill with samples of U(a, b) (torch names the bounds `from` and `to`)."""
        if not a <= b:
            raise ValueError(f"uniform_: expects a <= b, got a={a} > b={b}")
        return self._random_("uniform_", lambda rng, dtype:
                             a + (b - a) * rng.random(self.shape, dtype=dtype))

    def fill_(self, value) -> "Tensor":
        """Set every element to `value` (a number or a one-element Tensor)."""
        self._check_inplace("fill_")
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise ValueError(f"fill_: value must be a number or a one-element tensor, got "
                                 f"shape {value.shape}")
            value = backend.to_device(value.data, self.device).reshape(())
        self.data[...] = value
        return self

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def copy_(self, src) -> "Tensor":
        """Copy `src` (a Tensor or an array; broadcast to this shape, cast to this dtype, moved
        from any device) into this tensor."""
        self._check_inplace("copy_")
        if isinstance(src, Tensor):
            if src._requires_grad and _grad_mode.enabled:
                raise RuntimeError("copy_: src requires grad, and tinygan records no in-place op "
                                   "in the graph; copy src.detach(), or use an out-of-place op")
            src = src.data
        elif not _is_array(src):
            raise TypeError(f"copy_: src must be a Tensor or an array, got {type(src).__name__}")
        try:
            ok = np.broadcast_shapes(tuple(src.shape), self.shape) == self.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"copy_: src of shape {tuple(src.shape)} cannot be broadcast to "
                             f"this tensor's shape {self.shape}")
        self.data[...] = backend.to_device(src, self.device)
        return self

    # -- autograd entry points ----------------------------------------------------------------
    def backward(self, grad=None, create_graph: bool = False, inputs=None,
                 retain_graph: bool | None = None) -> None:
        """Accumulate d(self)/d(leaf) into every reachable leaf's `.grad`.

        As in torch, the graph is freed on the way (each op lets go of its saved inputs once
        its backward has run), unless `retain_graph` (default: `create_graph`) is true; a
        second backward through a freed graph raises.

        With `inputs` (a Tensor or a list, as in torch) only those tensors' `.grad` are
        written, and only the ops on a path to them are differentiated: a generator update
        `loss_G.backward(inputs=G.parameters())` back-propagates through D to its input but
        never computes D's weight gradients, which the G step would throw away.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph "
                               "(did you forget requires_grad=True on the leaves?)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward(): grad can be implied only for a scalar output, "
                                   f"this tensor has shape {self.shape}")
            grad = Tensor(backend.get_array_module(self.data).ones_like(self.data))
        if inputs is None:
            run_backward([self], [grad], inputs=None, create_graph=create_graph,
                         retain_graph=retain_graph)
            return
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor) or not t.requires_grad:
                raise ValueError(f"backward(): inputs[{i}] is not a Tensor that requires grad")
        grads = run_backward([self], [grad], inputs=inputs, create_graph=create_graph,
                             allow_unused=True, retain_graph=retain_graph)
        _store_grads(inputs, grads, create_graph, seeds=(grad,))

    # -- operators (each is a Function in tinygan.functional) -------------------------------------
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().sub(self, other)

    def __rsub__(self, other):
        return _ops().sub(other, self)

    def __mul__(self, other):
        return _ops().mul(self, other)

    def __rmul__(self, other):
        return _ops().mul(other, self)

    def __truediv__(self, other):
        return _ops().div(self, other)

    def __rtruediv__(self, other):
        return _ops().div(other, self)

    def __pow__(self, exponent):
        return _ops().pow(self, exponent)

    def __rpow__(self, base):
        return _ops().exp(self * float(np.log(base)))

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __neg__(self):
        return _ops().neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops().abs(self)

    def __getitem__(self, key):
        return _ops().getitem(self, key)

    # Comparisons give boolean tensors outside the graph.  __eq__ is left as identity so that
    # tensors stay usable as dict keys and in `in` tests (a deliberate departure from torch).
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other))

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    __hash__ = object.__hash__

    # -- methods --------------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False):
        return _ops().sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return _ops().mean(self, dim, keepdim)

    def max(self, dim=None, keepdim=False):
        return _ops().amax(self, dim, keepdim)

    def var(self, dim=None, keepdim=False, unbiased=True):
        return _ops().var(self, dim, keepdim, unbiased)

    def reshape(self, *shape):
        return _ops().reshape(self, *shape)

    view = reshape

    def transpose(self, dim0, dim1):
        return _ops().transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops().permute(self, *dims)

    @property
    def T(self):
        return _ops().permute(self, *reversed(range(self.ndim)))

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops().flatten(self, start_dim, end_dim)

    def squeeze(self, dim=None):
        return _ops().squeeze(self, dim)

    def unsqueeze(self, dim):
        return _ops().unsqueeze(self, dim)

    def expand(self, *shape):
        return _ops().broadcast_to(self, *shape)

    def exp(self):
        return _ops().exp(self)

    def log(self):
        return _ops().log(self)

    def sqrt(self):
        return _ops().sqrt(self)

    def abs(self):
        return _ops().abs(self)

    def clip(self, min=None, max=None):
        return _ops().clip(self, min, max)

    clamp = clip

    def tanh(self):
        return _ops().tanh(self)

    def sigmoid(self):
        return _ops().sigmoid(self)

    def relu(self):
        return _ops().relu(self)


# ---------------------------------------------------------------------------------------
# Function

class Function:
    """A differentiable op: `forward` on raw arrays, `backward` in differentiable Tensor ops.

    Subclass it and write

        def forward(self, *arrays):  -> array or tuple of arrays
        def backward(self, *grad_outputs):  -> Tensor (one input) or tuple of Tensor | None

    then apply it with `MyOp(**options)(x, y)`.  Inside `backward`:
      - `self.inputs` are the input Tensors (use them, not raw arrays, so that the backward
        is itself differentiable);  `self.output(i)` is output i as a Tensor;
      - `self.needs_input_grad[i]` says whether input i's gradient is wanted at all
        (return None for the others — e.g. no dL/dx for the images fed to D).
    Non-Tensor inputs (Python numbers, arrays) are accepted and treated as constants.
    """

    inputs: tuple
    needs_input_grad: tuple

    def __call__(self, *inputs):
        tensors = _as_tensors(inputs, type(self).__name__)
        outputs = self.forward(*(t.data for t in tensors))
        single = not isinstance(outputs, tuple)
        outputs = tuple(Tensor(y) for y in ((outputs,) if single else outputs))
        if _grad_mode.enabled and any(t._requires_grad for t in tensors):
            self.inputs = tensors
            self.needs_input_grad = tuple(t._requires_grad for t in tensors)
            self.generation = max(t.generation for t in tensors)
            for y in outputs:
                if y.data.dtype.kind == "f":
                    y.creator, y.generation, y._requires_grad = self, self.generation + 1, True
            self._outputs = tuple(weakref.ref(y) for y in outputs)
            # Shapes and dtypes outlive the (weakly held) outputs: an output nobody kept still
            # needs a zero gradient when a sibling output is back-propagated.
            self._output_meta = tuple((y.shape, y.dtype) for y in outputs)
        return outputs[0] if single else outputs

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    def output(self, i: int = 0) -> Tensor:
        y = self._outputs[i]()
        if y is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs output {i}, which was freed")
        return y

    def __repr__(self):
        return f"<{type(self).__name__} gen={getattr(self, 'generation', '?')}>"


def _as_tensors(inputs, opname: str) -> tuple:
    """Wrap constants as Tensors on the device/dtype of the Tensor inputs; refuse mixed devices."""
    ref = next((x for x in inputs if isinstance(x, Tensor)), None)
    if ref is None:
        raise TypeError(f"{opname}: expected at least one Tensor input")
    ref_is_cpu = isinstance(ref.data, np.ndarray)
    out = []
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor):
            if isinstance(x.data, np.ndarray) != ref_is_cpu:
                raise ValueError(f"{opname}: inputs are on different devices "
                                 f"({ref.device} and {x.device}); move them with .to(device)")
            out.append(x)
        elif _is_array(x):
            out.append(Tensor(x))
        else:
            xp = backend.get_array_module(ref.data)
            integral = ref.dtype.kind in "iu" and isinstance(x, (int, np.integer))
            # A Python number takes the Tensor's dtype (int tensor * 2 stays integer, as in torch).
            dtype = ref.dtype if ref.dtype.kind == "f" or integral else backend.DEFAULT_DTYPE
            out.append(Tensor(xp.asarray(x, dtype=dtype)))
    return tuple(out)


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if like is not None:
        return _as_tensors((like, x), "as_tensor")[1]
    return Tensor(x)


# ---------------------------------------------------------------------------------------
# The backward engine

def run_backward(outputs, grad_outputs, inputs=None, create_graph=False, allow_unused=False,
                 retain_graph=None):
    """Propagate `grad_outputs` from `outputs` back through the graph.

    With `inputs=None` (Tensor.backward) every reachable leaf that requires grad gets the
    gradient added to its `.grad`.  With `inputs` given (tinygan.grad) only paths that lead to
    them are walked, nothing's `.grad` is touched, and their gradients are returned.

    Unless `retain_graph` (default: `create_graph`), each op walked drops its saved inputs
    right after its backward: the activations a graph holds are freed as the backward passes
    them, not when the caller's last reference to the loss goes (a GAN's G step would
    otherwise run with the D step's whole graph still alive).
    """
    retain = create_graph if retain_graph is None else retain_graph
    outputs = [y for y in outputs]
    seeds = []
    for y, g in zip(outputs, grad_outputs):
        g = g if isinstance(g, Tensor) else Tensor(g)
        if g.shape != y.shape:
            raise ValueError(f"backward: grad of shape {g.shape} for an output of shape {y.shape}")
        seeds.append(g)

    functions = _collect_functions(outputs)
    if inputs is None:
        wanted = None
        relevant = functions                       # every recorded op has an input needing grad
    else:
        wanted = {id(t): t for t in inputs}
        relevant = _functions_leading_to(functions, wanted)
        if not allow_unused:                       # before the walk frees anything
            reached = {id(y) for y in outputs} | {id(x) for f in relevant.values()
                                                  for x in f.inputs or ()}
            for i, t in enumerate(inputs):
                if id(t) not in reached:
                    _raise_unused(i, t)

    grads: dict[int, Tensor] = {}
    keep: dict[int, Tensor] = {}                   # keeps id()s of pending tensors valid

    def accumulate(t: Tensor, g: Tensor):
        key = id(t)
        if key in grads:
            grads[key] = grads[key] + g
        else:
            grads[key], keep[key] = g, t

    heap, pushed, counter = [], set(), 0

    def push(f):
        nonlocal counter
        if f is not None and id(f) in relevant and id(f) not in pushed:
            pushed.add(id(f))
            heapq.heappush(heap, (-f.generation, counter, f))
            counter += 1

    with set_grad_enabled(create_graph):
        for y, g in zip(outputs, seeds):
            if y.requires_grad:
                accumulate(y, g)
                push(y.creator)
        while heap:
            f = heapq.heappop(heap)[2]
            if f.inputs is None:
                raise RuntimeError(f"backward through {type(f).__name__} a second time: an earlier "
                                   f"backward freed this graph; pass retain_graph=True to it")
            gys = []
            outs = [ref() for ref in f._outputs]   # alive while f.backward may call f.output()
            for y in outs:
                if y is None or id(y) not in grads:
                    gys.append(None)
                elif wanted is not None and id(y) in wanted:
                    gys.append(grads[id(y)])       # a requested non-leaf: keep its grad
                else:
                    gys.append(grads.pop(id(y)))   # consumed: free the buffer now
                    keep.pop(id(y), None)
            if all(g is None for g in gys):
                continue
            gys = [_zeros_like_output(f, i) if g is None else g for i, g in enumerate(gys)]

            needs = tuple(_input_needed(x, wanted, relevant) for x in f.inputs)
            saved, f.needs_input_grad = f.needs_input_grad, needs
            try:
                gxs = f.backward(*gys)
            finally:
                f.needs_input_grad = saved
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            if len(gxs) != len(f.inputs):
                raise RuntimeError(f"{type(f).__name__}.backward returned {len(gxs)} gradients "
                                   f"for {len(f.inputs)} inputs")
            for x, gx, need in zip(f.inputs, gxs, needs):
                if not need or gx is None:
                    continue
                if not isinstance(gx, Tensor):
                    gx = Tensor(gx)
                if gx.shape != x.shape:
                    raise RuntimeError(f"{type(f).__name__}.backward: gradient of shape {gx.shape} "
                                       f"for an input of shape {x.shape}")
                accumulate(x, gx)
                push(x.creator)
            if not retain:
                f.inputs = None

        if wanted is None:
            leaves = [t for t in keep.values() if t.creator is None and t.requires_grad]
            _store_grads(leaves, [grads[id(t)] for t in leaves], create_graph, seeds)
            return None

    results = []
    for i, t in enumerate(inputs):
        g = grads.get(id(t))
        if g is None and not allow_unused:
            _raise_unused(i, t)
        results.append(g)
    return tuple(results)


def _raise_unused(i: int, t: Tensor):
    raise RuntimeError(f"grad: input {i} (shape {t.shape}) is not reached from the outputs; "
                       f"pass allow_unused=True to get None for it")


def _store_grads(tensors, grads, create_graph: bool, seeds=()) -> None:
    """t.grad += g for each pair (g None: nothing reached t).

    A first gradient must become a buffer of the tensor's own: g may be a read-only broadcast
    view, a seed the caller passed to backward(), or the very array another leaf receives
    (both inputs of a + b get gy).  An array an op has just written and handed over is
    adopted as it is; anything else is copied — in C order, which the optimizers' fast
    kernels need (a sum of two transposed views owns its data but is in Fortran order).
    """
    claimed = {id(s.data if isinstance(s, Tensor) else s) for s in seeds}
    for t, g in zip(tensors, grads):
        if g is None:
            continue
        if t.grad is not None:
            t.grad = t.grad + g
        elif create_graph:
            t.grad = g
        else:
            a = g.data
            flags = getattr(a, "flags", None)         # CuPy's flags have no `writeable`
            own = (flags is not None and flags.owndata and flags.c_contiguous
                   and getattr(flags, "writeable", True) and id(a) not in claimed)
            claimed.add(id(a))
            t.grad = g if own else Tensor(a.copy())


def _collect_functions(outputs) -> dict[int, Function]:
    """Every Function reachable from `outputs`, found with an explicit stack (no recursion)."""
    found: dict[int, Function] = {}
    stack = [y.creator for y in outputs if y.creator is not None]
    while stack:
        f = stack.pop()
        if id(f) in found:
            continue
        found[id(f)] = f
        stack.extend(x.creator for x in f.inputs or () if x.creator is not None
                     and id(x.creator) not in found)
    return found


def _functions_leading_to(functions: dict, wanted: dict) -> dict[int, Function]:
    """The Functions with a path to one of the `wanted` tensors (lower generations first)."""
    relevant: dict[int, Function] = {}
    for f in sorted(functions.values(), key=lambda f: f.generation):
        if any(id(x) in wanted or (x.creator is not None and id(x.creator) in relevant)
               for x in f.inputs or ()):
            relevant[id(f)] = f
    return relevant


def _input_needed(x: Tensor, wanted, relevant) -> bool:
    if not x.requires_grad:
        return False
    if wanted is None:
        return True
    return id(x) in wanted or (x.creator is not None and id(x.creator) in relevant)


def _zeros_like_output(f: Function, i: int) -> Tensor:
    shape, dtype = f._output_meta[i]
    return Tensor(backend.get_array_module(f.inputs[0].data).zeros(shape, dtype=dtype))


def grad(outputs, inputs, grad_outputs=None, create_graph: bool = False,
         allow_unused: bool = False, retain_graph: bool | None = None) -> tuple:
    """d(outputs)/d(inputs), like `torch.autograd.grad`; leaves every `.grad` untouched.

    With `create_graph=True` the returned gradients are part of a graph themselves, so a
    function of them (a gradient penalty) can be back-propagated.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor) or _is_array(grad_outputs):
        grad_outputs = [grad_outputs]
    seeds = []
    for y, g in zip(outputs, grad_outputs):
        if g is None:
            if y.data.size != 1:
                raise RuntimeError(f"grad: grad_outputs must be given for a non-scalar output "
                                   f"of shape {y.shape}")
            g = Tensor(backend.get_array_module(y.data).ones_like(y.data))
        seeds.append(g)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    return run_backward(outputs, seeds, inputs=inputs, create_graph=create_graph,
                        allow_unused=allow_unused, retain_graph=retain_graph)
