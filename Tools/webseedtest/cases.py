"""--only, the option with which every interop harness runs some of its cases (lettered a, b, …)."""


def add_only(ap, all_cases):
    ap.add_argument("--only", action="append", default=[],
                    help="cases to run, comma separated: " + ",".join(all_cases))


def chosen_cases(ap, args, all_cases):
    """The cases --only names, in its order (every case without it); an unknown one is a usage
    error."""
    cases = [c for o in args.only for c in o.split(",") if c] or list(all_cases)
    unknown = [c for c in cases if c not in all_cases]
    if unknown:
        ap.error("unknown cases %s (known: %s)" % (unknown, ",".join(all_cases)))
    return cases
