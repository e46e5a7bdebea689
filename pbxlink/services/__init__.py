"""One module per feature, each fed by the bus and handed its ports by bootstrap."""
