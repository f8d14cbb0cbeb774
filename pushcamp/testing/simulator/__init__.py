"""A Web Push service simulator (RFC 8030) for tests, benchmarks and demos.

    from pushcamp.testing.simulator import Fault, PushServiceSimulator

    with PushServiceSimulator() as sim:
        sub = sim.subscribe()            # sub.to_json(): PushSubscription.toJSON()
        ...                              # push to sub.endpoint with your sender
        sim.messages(sub)                # what arrived, decrypted
        sim.inject(sub, Fault.gone())    # the next push gets 410

From a shell: ``python -m pushcamp.testing.simulator --port 8090``. See
``docs/simulator.md``.
"""

from pushcamp.testing.simulator._remote import SimulatorClient, SimulatorProcess, subscription_id
from pushcamp.testing.simulator._server import PushServiceSimulator, run
from pushcamp.testing.simulator._state import (
    Fault,
    ReceivedMessage,
    SimulatedSubscription,
    SimulatorState,
)

__all__ = [
    "Fault",
    "PushServiceSimulator",
    "ReceivedMessage",
    "SimulatedSubscription",
    "SimulatorClient",
    "SimulatorProcess",
    "SimulatorState",
    "run",
    "subscription_id",
]
