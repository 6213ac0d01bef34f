"""Resolvers: read through the viewer-scoped loaders and read models, compute with the domain."""
