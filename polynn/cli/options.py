"""Option types and the option groups several commands share (backend, architecture, JAX
devices and processes). A number's rule is :mod:`polynn.validate`'s, so that the command line
and the Python API refuse the same values with the same words."""

from __future__ import annotations

import argparse

from polynn.backend import BACKENDS, ENV_VAR, default_backend_name
from polynn.cli.common import UsageError
from polynn.nn.activations import ACTIVATIONS
from polynn.nn.losses import OUTPUTS
from polynn.validate import check_int, check_real


def _option_type(name, parse, check, noun):
    """An argparse type: ``parse`` the text (refused as "expected NOUN, got 'TEXT'"), then
    ``check(value)`` with validate's rule, reported as "must be ..."."""

    def convert(text):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        try:
            return check("value", value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("value ")) from None

    convert.__name__ = name
    return convert


positive_int = _option_type("positive_int", int, lambda n, v: check_int(n, v, 1),
                            "a whole number")
nonneg_int = _option_type("nonneg_int", int, lambda n, v: check_int(n, v, 0), "a whole number")
nonneg_float = _option_type("nonneg_float", float, lambda n, v: check_real(n, v, 0), "a number")
positive_float = _option_type("positive_float", float,
                              lambda n, v: check_real(n, v, 0, low_open=True), "a number")
#: Most CPU devices --cpu-devices asks JAX for (it starts 1,024 in about a second; 100,000
#: hang or crash it): enough for any mesh one tries on one machine.
MAX_CPU_DEVICES = 1024
cpu_devices = _option_type("cpu_devices", int, lambda n, v: check_int(n, v, 1, MAX_CPU_DEVICES),
                           "a whole number")
fraction = _option_type("fraction", float,
                        lambda n, v: check_real(n, v, 0, 1, low_open=True, high_open=True),
                        "a fraction between 0 and 1")


def _comma_list(name, item):
    """An argparse type for ``a`` or ``a,b,...`` (one per hidden layer): one value, or a list;
    each item converted by ``item`` (ArgumentTypeError/ValueError for a bad one)."""

    def convert(text):
        try:
            values = [item(part.strip()) for part in text.split(",")]
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return values[0] if len(values) == 1 else values

    convert.__name__ = name
    return convert


def _activation_name(text):
    if text not in ACTIVATIONS:
        # argparse's own words for a bad choice, as the other options say it.
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from "
                                         f"{', '.join(sorted(ACTIVATIONS))})")
    return text


activations = _comma_list("activations", _activation_name)
dropout_rates = _comma_list("dropout_rates", _option_type(
    "dropout", float, lambda n, v: check_real(n, v, 0, 1, high_open=True), "a number"))


def add_backend_options(p):
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help=f"array backend (default: ${ENV_VAR} or numpy; now "
                        f"{default_backend_name()!r})")
    p.add_argument("--device", default=None, help="backend device, e.g. cpu, gpu:0, cuda:1")


def add_architecture_options(p, *, layers, activation):
    p.add_argument("--layers", type=positive_int, nargs="*", default=layers, metavar="N",
                   help="hidden layer sizes, e.g. --layers 64 64 (default: "
                        f"{' '.join(map(str, layers))}; give no number for none)")
    p.add_argument("--activation", type=activations, default=activation, metavar="NAME[,NAME...]",
                   help=f"hidden-layer activation: one of {', '.join(sorted(ACTIVATIONS))}, "
                        f"or one per hidden layer, e.g. relu,tanh (default: {activation})")
    p.add_argument("--dropout", type=dropout_rates, default=0.0, metavar="P[,P...]",
                   help="dropout rate of the hidden layers while training, in [0, 1), or one "
                        "per hidden layer, e.g. 0.2,0.1 (default: 0)")
    p.add_argument("--output", choices=sorted(OUTPUTS), default="softmax",
                   help="output/loss pair: softmax + cross-entropy, sigmoid + binary "
                        "cross-entropy (2 classes), identity + mean squared error, poisson "
                        "(exp) + Poisson deviance for counts (default: softmax)")
    p.add_argument("--l2", type=nonneg_float, default=1e-3,
                   help="L2 strength: loss += 0.5 * l2 * sum(W**2) (default: 1e-3)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial weights and of the shuffling (default: 0)")


def add_distributed_options(p):
    group = p.add_argument_group(
        "many devices and processes (JAX)",
        "Data-parallel training on a JAX mesh; with several processes run the same command in "
        "each (only process 0 prints and writes files).")
    group.add_argument("--mesh", default=None, metavar="N|all|DxM",
                       help="train on N devices (or all, or D data x M model devices)")
    group.add_argument("--cpu-devices", type=cpu_devices, default=None, metavar="N",
                       help="make JAX's CPU expose N devices, 1 to "
                            f"{MAX_CPU_DEVICES} (to try --mesh on a laptop)")
    group.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="process 0's address: join a multi-process run "
                            "(jax.distributed.initialize)")
    group.add_argument("--num-processes", type=positive_int, default=None, metavar="N")
    group.add_argument("--process-id", type=nonneg_int, default=None, metavar="I")


def start_distributed(args) -> bool:
    """Force CPU devices and join the cluster as the options of :func:`add_distributed_options`
    ask, before JAX starts; True on the process that prints and writes (process 0, or the only
    one)."""
    from polynn import distributed

    if args.coordinator or args.num_processes or args.process_id is not None:
        if not (args.coordinator and args.num_processes and args.process_id is not None):
            raise UsageError("--coordinator, --num-processes and --process-id go together")
        distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                               cpu_devices=args.cpu_devices)
    elif args.cpu_devices is not None:
        distributed.force_cpu_devices(args.cpu_devices)
    return distributed.is_main_process()
