"""One module per GraphQL type, each with a converter from the store's or the domain's values."""
