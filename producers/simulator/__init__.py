"""Province simulator: a pure, deterministic source of realistic contract events.

``build_province`` models Bắc Giang from seed 001's numbers, ``generate`` turns it into the
events facilities would send (in send order), ``write_registry`` writes the matching reference
files. Publishing is someone else's job: nothing here touches Kafka.
"""

from producers.simulator.generator import Behaviour, SimulatedEvent, generate
from producers.simulator.province import (
    Deadline,
    Facility,
    Item,
    Patient,
    PlantConfig,
    Province,
    Target,
    Unit,
    build_province,
    pseudonymise,
)
from producers.simulator.registry_files import write_registry

__all__ = [
    "Behaviour",
    "Deadline",
    "Facility",
    "Item",
    "Patient",
    "PlantConfig",
    "Province",
    "SimulatedEvent",
    "Target",
    "Unit",
    "build_province",
    "generate",
    "pseudonymise",
    "write_registry",
]
