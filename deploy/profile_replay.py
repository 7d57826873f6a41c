"""Where the national rebuild spends its time: cProfile of one rebuild worker on a generated
data set, given every partition (so the profile is of one process doing all the work).

    python -m deploy.profile_replay --cities 10      # ~207,000 events; prints the top functions

Starts its own Kafka and FerretDB on free ports, like `bangkom bench`, and stops them after.
"""

import argparse
import asyncio
import cProfile
import logging
import pstats
import time

from deploy.datagen import city_names, generate, produce
from deploy.local.infra import scratch_ferretdb, scratch_kafka, setup
from services.evaluation.replay import log_extent, work, worker_spec
from services.evaluation.store import DeltaStore
from shared.mongo import connect
from shared.kafka_admin import ensure_topics
from shared.settings import Settings
from shared.topics import CITY_STREAMS, topic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=10)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    setup()
    root, kafka = scratch_kafka("bangkom-profile-")
    ferretdb = scratch_ferretdb(root)
    kafka.start()
    ferretdb.start()
    try:
        async def write() -> int:
            await ensure_topics(kafka.bootstrap, [topic(c, s) for c in city_names(args.cities)
                                                  for s in CITY_STREAMS])
            return await produce(kafka.bootstrap, generate(args.cities, seed=1))

        events = asyncio.run(write())
        settings = Settings(node="national", service="evaluation",
                            kafka_bootstrap=kafka.bootstrap, mongo_url=ferretdb.url)
        async def prepare() -> dict:
            client = connect(settings)
            generation = await DeltaStore(client[settings.database]).begin_rebuild()
            await client.close()
            return worker_spec(settings, generation, await log_extent(kafka.bootstrap))

        spec = asyncio.run(prepare())
        profile = cProfile.Profile()
        began = time.perf_counter()
        profile.enable()
        asyncio.run(work(spec))
        profile.disable()
        elapsed = time.perf_counter() - began
        print(f"{events:,} events rebuilt in {elapsed:.1f} s ({events / elapsed:,.0f}/s)")
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
    finally:
        ferretdb.stop()
        kafka.stop()


if __name__ == "__main__":
    main()
