"""Choose which layers of a torch model to record, by name or by filter.

By default napkit records the input of every ``nn.ReLU`` module, i.e. the
pre-activations. Models that call ``F.relu``/``torch.relu`` in ``forward`` are traced
with torch.fx and their ReLU calls become modules, so the same hooks apply.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from torch import fx, nn

from napkit.errors import NapkitError

LayerSpec = Sequence[str] | Callable[[str, nn.Module], bool] | None

_RELU_CALLS = {"relu", "relu_"}


def _is_functional_relu(node: fx.Node) -> bool:
    if node.op == "call_function":
        return getattr(node.target, "__name__", "") in _RELU_CALLS
    return node.op == "call_method" and node.target in _RELU_CALLS


def expose_functional_relus(model: nn.Module) -> nn.Module:
    """Return ``model`` itself if it has ReLU modules, else an fx copy whose relu calls are modules."""
    if any(isinstance(m, nn.ReLU) for m in model.modules()):
        return model
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:
        raise NapkitError(
            f"{type(model).__name__} has no nn.ReLU modules and cannot be traced by torch.fx "
            f"({exc}); use nn.ReLU modules or name the layers to record"
        ) from None
    count = 0
    for node in list(gm.graph.nodes):
        if _is_functional_relu(node):
            name = f"relu_fx{count}"
            gm.add_submodule(name, nn.ReLU())
            with gm.graph.inserting_after(node):
                new = gm.graph.call_module(name, args=(node.args[0],))
            node.replace_all_uses_with(new)
            gm.graph.erase_node(node)
            count += 1
    gm.graph.lint()
    gm.recompile()
    return gm


def check_layer_names(layers: Sequence[str], what: str = "the layer list") -> list[str]:
    """``layers`` as a list, refused when it names one layer twice (``what``: how the error
    calls the list, e.g. ``--layers``).

    An empty list stays allowed here (a NAP of a network without hidden layers asks for
    none); the CLI refuses an empty ``--layers``.
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    if twice:
        raise NapkitError(f"{what} names {', '.join(repr(n) for n in twice)} more than once")
    return names


def select_layers(model: nn.Module, layers: LayerSpec = None) -> dict[str, nn.Module]:
    """Modules to record, by exact names, a ``(name, module) -> bool`` filter, or all ReLUs."""
    if not isinstance(model, nn.Module):
        raise NapkitError(f"cannot select layers of a {type(model).__name__}: give a torch module")
    named = dict(model.named_modules())
    if layers is None:
        chosen = {n: m for n, m in named.items() if isinstance(m, nn.ReLU)}
        if not chosen:
            raise NapkitError(f"{type(model).__name__} has no ReLU to record")
    elif callable(layers):
        chosen = {n: m for n, m in named.items() if n and layers(n, m)}
        if not chosen:
            raise NapkitError("the layer filter matched no module")
    else:
        layers = check_layer_names(layers)
        missing = [n for n in layers if n not in named]
        if missing:
            known = ", ".join(n for n in named if n)
            raise NapkitError(f"no layer named {missing[0]!r}; the model has: {known}")
        chosen = {n: named[n] for n in layers}
    return chosen
