"""Wiring of the sandbox's behaviour beyond plain storage: server defaults and allocation, garbage
collection, workload simulation, authentication extras / RBAC, and fault injection.

``install(sandbox)`` is called once by the server with its ``SandboxConfig.extras``; ``start()``
once its event loop runs. Each part lives in its own module and plugs into the store through its
documented hooks (admission, listeners) or into the request path through ``sandbox.hooks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tether.sandbox import defaults, faults, gc, immutable, rbac, simulation

if TYPE_CHECKING:
    from tether.sandbox.server import Sandbox


@dataclass
class ExtrasConfig:
    simulate: bool = True
    sim_delay: float = 1.0  # seconds from a pod's creation to it running (and a Job pod's completion)
    authz: str = "AlwaysAllow"  # or "rbac"
    token_file: Path | None = None
    faults: list[str] = field(default_factory=list)  # --fault values, see tether.sandbox.faults
    garbage_collection: bool = True
    events: bool = True  # the simulated controllers record Events (kubectl describe shows them)


@dataclass
class Extras:
    allocator: defaults.Allocator
    collector: gc.GarbageCollector | None
    simulation: simulation.Simulation | None
    rbac: rbac.Rbac
    faults: faults.FaultInjector

    def start(self) -> None:
        if self.simulation is not None:
            self.simulation.start()
        self.faults.start()

    def stop(self) -> None:
        self.faults.stop()


def install(sandbox: Sandbox) -> Extras:
    config: ExtrasConfig = getattr(sandbox.config, "extras", None) or ExtrasConfig()
    if config.authz not in ("AlwaysAllow", "rbac", "RBAC"):
        from tether.errors import UsageError

        raise UsageError(f"--authz {config.authz}: expected rbac or AlwaysAllow")
    store = sandbox.store
    allocator = defaults.install(store)
    immutable.install(store)  # after defaulting: a field the server fills in again is no change
    collector = gc.install(store) if config.garbage_collection else None
    sim = simulation.install(store, delay=config.sim_delay, events=config.events) if config.simulate else None
    authorize = config.authz.lower() == "rbac"
    if authorize:
        rbac.ensure_bootstrap(store)
    access = rbac.install(store, sandbox.users, authorize=authorize, token_file=config.token_file)
    injector = faults.install(store, faults.parse_flags(config.faults))
    sandbox.hooks.append(access.hook)  # authorization first: a denied request is never delayed or faulted
    sandbox.hooks.append(injector.hook)
    return Extras(allocator, collector, sim, access, injector)
