"""``polynn gradcheck``: the hand-derived gradients against jax.grad and finite differences."""

from __future__ import annotations

from polynn.cli.options import add_architecture_options, nonneg_float, positive_int
from polynn.gradient_check import DEFAULT_TOL, JUDGES
from polynn.nn.activations import ACTIVATIONS
from polynn.nn.losses import OUTPUTS

DESCRIPTION = (
    "Compare polynn's hand-derived backpropagation with jax.grad of the same loss and with "
    "central finite differences, in float64, on random data. Exit status 1 when an error "
    "exceeds the tolerance.")


def add_parser(commands):
    """Register ``gradcheck`` with its options on the ``commands`` subparsers."""
    p = commands.add_parser(
        "gradcheck", help="check the hand-derived gradients against jax.grad and finite "
                          "differences", description=DESCRIPTION)
    add_architecture_options(p, layers=[5, 4], activation="relu")
    p.add_argument("--inputs", type=positive_int, default=3, help="input features (default: 3)")
    p.add_argument("--outputs", type=positive_int, default=None,
                   help="output units (default: 3; 1 for --output sigmoid)")
    p.add_argument("-m", "--examples", type=positive_int, default=8, dest="m",
                   help="rows of random data (default: 8)")
    p.add_argument("--method", choices=list(JUDGES), nargs="+", default=list(JUDGES),
                   help=f"judges (default: {' '.join(JUDGES)})")
    tolerances = ", ".join(f"{tol:g} against {judge}" for judge, tol in DEFAULT_TOL.items())
    p.add_argument("--tol", type=nonneg_float, default=None,
                   help=f"largest relative error allowed (default: {tolerances})")
    p.add_argument("--all", action="store_true", help="check every activation x output pair")
    p.set_defaults(run=cmd_gradcheck)


def cmd_gradcheck(args, out, err) -> int:
    from polynn.gradient_check import gradcheck

    pairs = ([(a, o) for a in sorted(ACTIVATIONS) for o in sorted(OUTPUTS)] if args.all
             else [(args.activation, args.output)])
    failed = 0
    for activation, output in pairs:
        outputs = args.outputs or (1 if output == "sigmoid" else 3)
        result = gradcheck([args.inputs, *args.layers, outputs], activation, output,
                           l2=args.l2, m=args.m, seed=args.seed, methods=tuple(args.method),
                           dropout=args.dropout)
        tol = {j: DEFAULT_TOL[j] if args.tol is None else args.tol for j in args.method}
        ok = result.ok(tol)
        failed += not ok
        print(result.table(), file=out)
        worst = ", ".join(f"{j} {result.max_error(j):.2e} (tol {tol[j]:g})"
                          for j in result.available())
        print(f"{'OK' if ok else 'FAILED'}: max relative error {worst or 'n/a: no judge ran'}\n",
              file=out)
    if len(pairs) > 1:
        print(f"{len(pairs) - failed} of {len(pairs)} activation x output pairs OK", file=out)
    return 1 if failed else 0
