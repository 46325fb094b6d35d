"""The contract's event format: Avro schemas on disk and the pydantic models that enforce it.

A leaf package: it imports no other ostwatch package.
"""
