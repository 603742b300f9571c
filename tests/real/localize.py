"""Prints the `go mod edit` flags that make a copied module buildable as a main module.

Usage: go mod edit -json | python3 localize.py STAGING_VERSION [MODULE=REPLACEMENT@VERSION ...]

- Every replace that points inside the module's own repository (`./api`, `../client/v3`,
  `./staging/src/k8s.io/api`) is dropped: those directories are nested modules, which a module zip
  leaves out. The module is then taken at its required version from the proxy; a requirement written
  as v0.0.0 (Kubernetes' staging modules) is set to STAGING_VERSION.
- Each MODULE=REPLACEMENT@VERSION argument adds a replace (a dependency version the proxy does not
  serve, swapped for one it does; versions.env names each and says why).
"""

import json
import sys


def main():
    staging = sys.argv[1]
    extra = sys.argv[2:]
    mod = json.load(sys.stdin)
    required = {r["Path"]: r["Version"] for r in mod.get("Require") or []}
    for replace in mod.get("Replace") or []:
        if not replace["New"]["Path"].startswith("."):
            continue
        old = replace["Old"]["Path"]
        print("-dropreplace=" + old)
        if required.get(old) == "v0.0.0":
            if not staging:
                sys.exit("%s is required as v0.0.0 and no published version was given" % old)
            print("-require=%s@%s" % (old, staging))
    for pair in extra:
        if "=" not in pair or "@" not in pair:
            sys.exit("not MODULE=REPLACEMENT@VERSION: %s" % pair)
        print("-replace=" + pair)


if __name__ == "__main__":
    main()
