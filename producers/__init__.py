"""Facility side: validate, serialise and publish events; the province simulator.

Never imports ``streams`` or ``sinks``: a facility embeds this without the consumer side.
"""
