"""Pure domain: entities, errors with codes, the model spec, metrics with direction."""
