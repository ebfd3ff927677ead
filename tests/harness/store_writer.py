"""A separate process that registers a deterministic batch and prints one line per acknowledged version:
`subject version schema_id fingerprint`. Used by the multi-process and crash tests.

Registration `i` of a batch goes to subject `s{i % subjects}-value`, version `i // subjects + 1`, with
content number `(i * 7919) % distinct`: the same (subject, version) always carries the same content, so
several writers running the same batch in different orders must agree on everything.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys

from kschema.store.base import StoreUnavailableError
from kschema.store.factory import open_store
from tests.harness.stores import avro_record, new_version


def planned(i: int, subjects: int, distinct: int) -> tuple[str, int, str]:
    content = (i * 7919) % distinct
    return f"s{i % subjects}-value", i // subjects + 1, avro_record(f"Rec{content}", f"f{content}")


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--distinct", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=None, help="shuffle the order with this seed")
    args = parser.parse_args(argv)
    order = list(range(args.count))
    if args.seed is not None:
        random.Random(args.seed).shuffle(order)
    store = await open_store(args.url)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        for i in order:
            subject, version, schema = planned(i, args.subjects, args.distinct)
            new = new_version(subject, version, schema)
            while True:
                try:
                    result = await store.register(new)
                    break
                except StoreUnavailableError:
                    continue  # busy beyond the busy timeout under heavy contention: try again
            sys.stdout.write(f"{subject} {version} {result.schema_id} {new.fingerprint}\n")
            sys.stdout.flush()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
