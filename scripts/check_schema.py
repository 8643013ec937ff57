#!/usr/bin/env python3
"""Validates claimgate configurations against filter-config/claimgate.schema.json.
Usage: check_schema.py SCHEMA CONFIG... ; exits 1 naming each error's JSON path."""
import json
import sys

import jsonschema


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    schema = json.load(open(sys.argv[1]))
    validator = jsonschema.Draft202012Validator(schema)
    failed = False
    for path in sys.argv[2:]:
        errors = list(validator.iter_errors(json.load(open(path))))
        for error in errors:
            failed = True
            print(f"{path}: {error.json_path}: {error.message}", file=sys.stderr)
        if not errors:
            print(f"schema {path}: OK")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
