"""ReluNetwork from and to torch modules.

Import traces the module with torch.fx, so ``nn.Sequential`` and custom modules whose
forward calls ``F.relu``/``torch.relu``/``x.view`` work alike. Arithmetic with constants
in forward (``(x - mean) / std`` with numbers or buffers) folds into the next layer.
Anything that is not an affine map or a ReLU is refused with its node's name.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
from torch import fx, nn

from napkit.errors import NapkitError
from napkit.network.affine_chain import AffineChain
from napkit.network.relu_network import ReluNetwork, check_network

_RELU_FUNCS = {torch.relu, torch.nn.functional.relu, torch.relu_}
_FLAT_FUNCS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
_FLAT_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "contiguous"}
_PASS_MODULES = (nn.Flatten, nn.Identity, nn.Dropout, nn.Unflatten)
_SHAPE_QUERIES = {getattr, operator.getitem}  # x.shape[0] and the like: no data flows
# element-wise arithmetic with a constant (normalisation in forward) folds into the chain
_ARITH = {
    operator.add: "add", torch.add: "add", operator.sub: "sub", torch.sub: "sub",
    operator.mul: "mul", torch.mul: "mul", operator.truediv: "div", torch.div: "div",
}
_ARITH_METHODS = {"add": "add", "sub": "sub", "mul": "mul", "div": "div"}


def _is_shape_query(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in ("size", "dim")
    return node.op == "call_function" and node.target in _SHAPE_QUERIES


def _constant(arg, consts: dict, where: str, shape: tuple[int, ...] | None, width: int) -> np.ndarray:
    """The value of a constant operand (a number, a buffer or parameter read by get_attr)."""
    if isinstance(arg, int | float) and not isinstance(arg, bool):
        return np.array([float(arg)])
    if isinstance(arg, fx.Node) and arg in consts:
        c = np.asarray(consts[arg], dtype=np.float64)
        if c.size not in (1, width) and shape is not None and int(np.prod(shape)) == width:
            while c.ndim > len(shape) and c.shape[0] == 1:  # a batch axis of the constant
                c = c[0]
            try:  # e.g. a per-channel mean of shape (C, 1, 1) over (C, H, W) inputs
                c = np.broadcast_to(c, shape)
            except ValueError as exc:
                msg = f"{where}: a constant of shape {c.shape} does not fit inputs {shape}"
                raise NapkitError(msg) from exc
        return c
    raise NapkitError(f"{where}: only arithmetic with constants is supported")


def _arith(kind: str, node: fx.Node, current, chain: AffineChain, consts: dict, where: str,
           shape: tuple[int, ...] | None) -> None:
    """Fold ``current (op) constant`` (or ``constant (op) current``) into the chain."""
    a, b = node.args[0], node.args[1]
    if node.kwargs.get("alpha", 1) != 1 or set(node.kwargs) - {"alpha"}:
        raise NapkitError(f"{where}: {kind} with {sorted(node.kwargs)} is not supported")
    if a is current:
        c = _constant(b, consts, where, shape, chain.width)
        if kind == "add":
            chain.add(c, where)
        elif kind == "sub":
            chain.add(-c, where)
        elif kind == "mul":
            chain.scale(c, where)
        else:
            chain.scale(1.0 / c, where)
    elif b is current and kind in ("add", "mul", "sub"):
        c = _constant(a, consts, where, shape, chain.width)
        if kind == "sub":  # c - x
            chain.scale(np.array([-1.0]), where)
            chain.add(c, where)
        elif kind == "add":
            chain.add(c, where)
        else:
            chain.scale(c, where)
    else:
        raise NapkitError(f"{where}: only {kind} of the layer chain and a constant is supported")


def from_torch(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> ReluNetwork:
    """Convert a torch module built of Linear, ReLU and reshapes into a ReluNetwork."""
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as exc:  # tracing failures come in many types
        raise NapkitError(f"cannot trace {type(model).__name__} with torch.fx: {exc}") from exc
    modules = dict(model.named_modules())
    called = [modules[n.target] for n in graph.nodes if n.op == "call_module"]
    linears = [m for m in called if isinstance(m, nn.Linear)]  # in execution order
    if not linears:
        raise NapkitError(f"{type(model).__name__} has no nn.Linear layer to import")
    n_in = linears[0].in_features

    chain = AffineChain(n_in)
    current: fx.Node | None = None
    consts: dict[fx.Node, np.ndarray] = {}
    shape = tuple(input_shape) if input_shape else None
    for node in graph.nodes:
        where = f"node '{node.name}' ({node.op} {node.target})"
        if node.op == "placeholder":
            current = node if current is None else current
            continue
        if node.op == "output":
            break
        if _is_shape_query(node):
            continue
        if node.op == "get_attr":  # a buffer or parameter: usable as a constant operand
            consts[node] = _attr(model, node.target).detach().double().cpu().numpy()
            continue
        kind = (_ARITH.get(node.target) if node.op == "call_function"
                else _ARITH_METHODS.get(node.target) if node.op == "call_method" else None)
        if kind is not None and len(node.args) == 2:
            _arith(kind, node, current, chain, consts, where, shape)
            current = node
            continue
        if node.args and isinstance(node.args[0], fx.Node) and node.args[0] is not current:
            raise NapkitError(f"{where}: only a chain of layers is supported (no branches)")
        if node.op == "call_module":
            mod = modules[node.target]
            if isinstance(mod, nn.Linear):
                chain.matmul(mod.weight.detach().double().cpu().numpy(), where)
                if mod.bias is not None:
                    chain.add(mod.bias.detach().double().cpu().numpy(), where)
            elif isinstance(mod, nn.ReLU):  # a ReLU module used twice names two layers
                name = node.target
                chain.relu(name if name not in chain.names else f"{name}#{chain.names.count(name)}")
            elif not isinstance(mod, _PASS_MODULES):
                raise NapkitError(f"{where}: layer {type(mod).__name__} is not supported")
        elif node.op == "call_function":
            if node.target in _RELU_FUNCS:
                chain.relu(node.name)
            elif node.target is torch.nn.functional.linear:
                raise NapkitError(f"{where}: F.linear with traced weights is not supported")
            elif node.target not in _FLAT_FUNCS:
                raise NapkitError(
                    f"{where}: function {getattr(node.target, '__name__', node.target)} is not supported"
                )
        elif node.op == "call_method":
            if node.target in ("relu", "relu_"):
                chain.relu(node.name)
            elif node.target not in _FLAT_METHODS:
                raise NapkitError(f"{where}: method .{node.target}() is not supported")
        current = node
    return chain.finish(shape or (n_in,), f"torch:{type(model).__name__}")


def _attr(model: nn.Module, target: str) -> torch.Tensor:
    obj = model
    for part in target.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, torch.Tensor):
        raise NapkitError(f"attribute {target} is not a tensor")
    return obj


def to_torch(net: ReluNetwork, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """An ``nn.Sequential`` of Flatten, Linear and ReLU computing the same function."""
    check_network(net)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise NapkitError(f"dtype must be a floating-point torch dtype, got {dtype!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        lin = nn.Linear(w.shape[1], w.shape[0], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.asarray(w)))
            lin.bias.copy_(torch.from_numpy(np.asarray(b)))
        layers.append(lin)
        if k < len(net.weights) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def relu_module_names(model: nn.Sequential) -> list[str]:
    """Names of the ReLU modules of a model made by :func:`to_torch`, in order."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
